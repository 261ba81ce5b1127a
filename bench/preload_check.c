/* The interposer's own checks (test preload-check): run with
 * LD_PRELOAD=libpmpreload.so, exits 0 when every call behaves as glibc's
 * does and the blocks come from a persistent space, and a forked child's
 * heap is its own copy. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>

#include <pthread.h>

#include <persistent_mem.h>

static int failures;

#define EXPECT(c)                                                            \
    do {                                                                     \
        if (!(c)) {                                                          \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c);           \
            failures++;                                                      \
        }                                                                    \
    } while (0)

/* KiB of storage the space's file (a memfd, the interposer's default)
 * holds, -1 if no descriptor names it. */
static long space_file_kib(void)
{
    DIR *d = opendir("/proc/self/fd");
    long kib = -1;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
        char path[300], link[300];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        struct stat st;
        if (n > 0 && (link[n] = '\0', strstr(link, "memfd:persistent_mem scratch") != NULL) &&
            stat(path, &st) == 0)
            kib = (long)(st.st_blocks / 2);
    }
    if (d != NULL)
        closedir(d);
    return kib;
}

/* glibc frees a thread's strerror buffer after the thread's destructors:
 * through us, a call from a thread whose library record was handed back */
static void *strerror_thread(void *arg)
{
    void *p = malloc(100);
    if (p == NULL)
        return (void *)1;
    free(p);
    (void)strerror(100000 + (int)(intptr_t)arg);  /* unknown: a buffer malloc'd */
    return NULL;
}

/* A run of this program in a fresh process (exec'd by main below), whose
 * first malloc opens the space: "errno", errno as it was after it (the
 * open's attempts set EOPNOTSUPP and the like, and glibc's malloc leaves
 * it); "limited", the block from a space all the same under an address
 * space limit the 64 GiB maximum does not fit in (it fell back to glibc,
 * with a line on stderr in every process: a helper's hunt) */
static int fresh(const char *what)
{
    errno = 0;
    char *p = malloc(64);
    int e = errno;
    if (p == NULL)
        return 1;
    strcpy(p, what);
    if (strcmp(p, "errno") == 0)
        return e != 0;
    if (strcmp(p, "limitfork") == 0) {
        /* an address space limit set after the space was opened, below
         * what the process has (a shell's `ulimit -v`), then a fork: the
         * child copies the heap all the same (the copy's mapping did not
         * fit: every fork of bash after `ulimit -v 2000000` ended with
         * "cannot copy the heap", a helper's hunt) */
        struct rlimit rl = {(rlim_t)4 << 30, (rlim_t)4 << 30};
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            return 1;
        pid_t pid = fork();
        if (pid == 0) {
            char *q = malloc(1000);
            _exit(q == NULL || strcmp(p, "limitfork") != 0);
        }
        int st;
        return pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    return persistent_space_of(p) == NULL;
}

/* /proc/self/exe run with arg in a child (RLIMIT_AS set to as, if not 0):
 * whether it exited 0 and wrote nothing on stderr */
static bool run_fresh(const char *arg, rlim_t as)
{
    int err[2];
    if (pipe(err) != 0)
        return false;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(err[1], 2);
        struct rlimit rl = {as, as};
        if (as != 0 && setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(2);
        execl("/proc/self/exe", "preload_check", arg, (char *)NULL);
        _exit(3);
    }
    close(err[1]);
    char got[256];
    ssize_t n = read(err[0], got, sizeof got - 1);
    close(err[0]);
    int st;
    bool ok = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (n > 0) {
        got[n] = 0;
        fprintf(stderr, "preload_check %s wrote on stderr: %s", arg, got);
    }
    return ok && n == 0;
}

/* Two threads forking at once: glibc runs the fork handlers of both at
 * the same time (outside its atfork lock); each child reads a block of
 * its parent and exits.  Returns how many children did not exit 0. */
static void *fork_many(void *arg)
{
    const char *p = arg;
    long bad = 0;
    for (int i = 0; i < 100; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(strcmp(p, "parent") != 0);
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad++;
    }
    return (void *)bad;
}

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

/* A thread's value of a key past the 32nd (glibc keeps those in a block it
 * callocs) across another thread's fork: glibc zeroes the other threads'
 * blocks in the child before any fork handler runs, which reached the
 * parent while that block was in the shared heap (a helper's hunt). */
static pthread_key_t tsd_key[40];
static _Atomic int tsd_stage;
static void *tsd_holder(void *arg)
{
    (void)arg;
    pthread_setspecific(tsd_key[39], (void *)0x1234);
    atomic_store(&tsd_stage, 1);
    while (atomic_load(&tsd_stage) != 2)
        usleep(100);
    return pthread_getspecific(tsd_key[39]);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return fresh(argv[1]);
    char *p = malloc(64);
    if (p == NULL) {
        fprintf(stderr, "malloc failed\n");
        return 1;
    }
    strcpy(p, "parent");
    EXPECT(persistent_space_of(p) != NULL);
    allocator_space_t *mine = persistent_space_of(p);

    /* the calls, as glibc's */
    void *a = NULL;
    EXPECT(posix_memalign(&a, 4096, 100) == 0 && ((uintptr_t)a & 4095) == 0);
    EXPECT(posix_memalign(&a, 3, 100) == EINVAL);
    free(a);
    void *b = aligned_alloc(64, 64);
    EXPECT(b != NULL && ((uintptr_t)b & 63) == 0 && persistent_space_of(b) == mine);
    free(b);
#if defined(__GLIBC__) && (__GLIBC__ == 2 && __GLIBC_MINOR__ < 38)
    /* glibc before 2.38 rounds aligned_alloc's alignment up, as memalign */
    volatile size_t odd_align = 24;           /* hidden from clang's check of it */
    b = aligned_alloc(odd_align, 64);
    EXPECT(b != NULL && ((uintptr_t)b & 31) == 0 && persistent_space_of(b) == mine);
    free(b);
#endif
    EXPECT(run_fresh("errno", 0));
    EXPECT(run_fresh("limited", (rlim_t)8 << 30));
    EXPECT(run_fresh("limitfork", 0));
    void *huge = memalign(4u << 20, 100);     /* past the library's 2 MiB: glibc's */
    EXPECT(huge != NULL && ((uintptr_t)huge & ((4u << 20) - 1)) == 0);
    free(huge);
    volatile size_t too_aligned = SIZE_MAX;   /* hidden from the compiler's checks */
    errno = 0;
    EXPECT(memalign(too_aligned, 10) == NULL && errno == EINVAL);
    void *v = valloc(10), *pv = pvalloc(10);
    EXPECT(v && pv && ((uintptr_t)v & 4095) == 0 && malloc_usable_size(pv) >= 4096);
    free(v);
    free(pv);
    char *z = calloc(0, 5);
    EXPECT(z != NULL);
    free(z);
    volatile size_t big = SIZE_MAX / 2;     /* hidden from the compiler's checks */
    errno = 0;
    EXPECT(calloc(big, 4) == NULL && errno == ENOMEM);
    errno = 0;
    EXPECT(reallocarray(NULL, big, 4) == NULL && errno == ENOMEM);
    char *r = realloc(NULL, 10);
    EXPECT(r != NULL && malloc_usable_size(r) >= 10);
    strcpy(r, "grow");
    r = realloc(r, 100000);
    EXPECT(r != NULL && strcmp(r, "grow") == 0);
    EXPECT(realloc(r, 0) == NULL);
    free(NULL);

    /* more threads than the library has records, each freeing after its
     * destructors (the 4,095th failed before orphan records were handed
     * back) */
    for (int i = 0; i < 5000; i++) {
        pthread_t t;
        void *ret = NULL;
        if (pthread_create(&t, NULL, strerror_thread, (void *)(intptr_t)i) != 0 ||
            pthread_join(t, &ret) != 0 || ret != NULL) {
            fprintf(stderr, "thread %d: malloc failed\n", i);
            failures++;
            break;
        }
    }

    /* fork: the child's heap is a copy; its writes stay its own */
    pid_t pid = fork();
    if (pid == 0) {
        int bad = strcmp(p, "parent") != 0;
        strcpy(p, "child");
        char *q = malloc(100);
        bad |= q == NULL || persistent_space_of(q) == NULL || persistent_space_of(q) == mine;
        char *volatile inherited = p;
        char *moved = realloc(p, 5000);     /* inherited: copied out */
        bad |= moved == NULL || strcmp(moved, "child") != 0;
        free(inherited);                    /* inherited: ignored (and again) */
        free(q);
        _exit(bad);
    }
    int st;
    EXPECT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    EXPECT(strcmp(p, "parent") == 0);

    /* the copy leaves out pages of zeros only: pages whose one nonzero
     * byte is anywhere in them, its last among them */
    enum { ZPAGES = 64 };
    unsigned char *zp = calloc(ZPAGES, 4096);
    EXPECT(zp != NULL && persistent_space_of(zp) == mine);
    for (size_t k = 0; k < ZPAGES; k++)
        zp[k * 4096 + (k * 601 + 4095) % 4096] = (unsigned char)(k + 1);
    pid = fork();
    if (pid == 0) {
        int bad = 0;
        for (size_t i = 0; i < (size_t)ZPAGES * 4096; i++) {
            size_t k = i / 4096;
            bad |= zp[i] != (i % 4096 == (k * 601 + 4095) % 4096 ? (unsigned char)(k + 1) : 0);
        }
        _exit(bad);
    }
    EXPECT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(zp);

    /* a child reads the parent's heap only where the file holds data:
     * its holes (the metadata of the maximum never written, a punched block
     * freed and punched) stay holes, and what lies past them is copied.
     * Reading them through the mapping backed them: every fork made the
     * memfd hold its whole size */
    unsigned char *punched = malloc(8u << 20), *after = malloc(4u << 20);
    EXPECT(punched != NULL && after != NULL && persistent_space_of(after) == mine);
    memset(punched, 0x11, 8u << 20);
    for (size_t i = 0; i < (4u << 20); i++)
        after[i] = (unsigned char)(i * 7 + 3);
    free(punched);                         /* 2 MiB and up: punched */
    long kib0 = space_file_kib();
    pid = fork();
    if (pid == 0) {
        int bad = 0;
        for (size_t i = 0; i < (4u << 20); i++)
            bad |= after[i] != (unsigned char)(i * 7 + 3);
        _exit(bad);
    }
    EXPECT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    long kib1 = space_file_kib();
    if (kib0 < 0)
        printf("the space's file not found: its holes after a fork not checked\n");
    else if (kib1 > kib0 + 1024) {
        fprintf(stderr, "a fork backed the space's holes: %ld KiB -> %ld KiB\n", kib0, kib1);
        failures++;
    }
    free(after);

    /* a shell's `exec 3>file`: the low numbers taken by the program, then
     * a fork, and the heap grown in the child and the parent (the space's
     * descriptor was 3: the child died copying an unreadable heap) */
    int nul = open("/dev/null", O_WRONLY);
    EXPECT(nul >= 0);
    int saved[10];                      /* what was there, put back after */
    for (int n = 3; n < 10; n++) {
        saved[n] = n == nul ? -1 : fcntl(n, F_DUPFD_CLOEXEC, 100);
        if (n != nul)
            EXPECT(dup2(nul, n) == n);
    }
    pid = fork();
    if (pid == 0) {
        int bad = strcmp(p, "parent") != 0;
        for (int i = 0; i < 64 && !bad; i++)
            bad |= malloc(1u << 20) == NULL;
        _exit(bad);
    }
    EXPECT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    for (int i = 0; i < 64; i++) {
        void *mb = malloc(1u << 20);
        EXPECT(mb != NULL && persistent_space_of(mb) == mine);
    }
    for (int n = 3; n < 10; n++) {
        if (n == nul)
            continue;
        if (saved[n] >= 0) {
            EXPECT(dup2(saved[n], n) == n);
            close(saved[n]);
        } else {
            close(n);
        }
    }
    close(nul);

    /* a daemon's close of every descriptor, then a fork: the space's
     * descriptor gone, the child gets a copy of the heap all the same
     * (the library's fork handler made it unreadable, and the child died
     * copying it: a helper's hunt, python's os.closerange and fork) */
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        char *own = malloc(1000);           /* the child's own space */
        if (own == NULL)
            _exit(1);
        strcpy(own, "own");
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        /* its space no longer grows: glibc's serves what it cannot */
        for (int i = 0; i < 64; i++) {
            char *mb = malloc(1u << 20);
            if (mb == NULL)
                _exit(1);
            memset(mb, i, 1u << 20);
        }
        char *grown = realloc(own, 64u << 20);
        if (grown == NULL || strcmp(grown, "own") != 0)
            _exit(1);
        own = grown;
        pid_t g = fork();
        if (g == 0) {
            char *q = malloc(1000);
            _exit(strcmp(p, "parent") != 0 || strcmp(own, "own") != 0 || q == NULL);
        }
        int gst;
        _exit(g < 0 || waitpid(g, &gst, 0) != g || !WIFEXITED(gst) || WEXITSTATUS(gst) != 0);
    }
    EXPECT(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* a program whose space cannot be opened, its first malloc inside
     * setlocale (bash, under a file size limit the space's metadata does
     * not fit): its allocations are glibc's, and it runs.  The library's
     * message of the failure called strerror, which took the locale lock
     * setlocale held, and bash hung for good (a helper's hunt) */
    if (access("/bin/bash", X_OK) == 0) {
        fflush(NULL);
        int out[2];
        EXPECT(pipe(out) == 0);
        pid = fork();
        if (pid == 0) {
            struct rlimit rl = {1u << 20, 1u << 20};
            dup2(out[1], 1);
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
                _exit(2);
            execl("/bin/bash", "bash", "-c", "echo hi", (char *)NULL);
            _exit(3);
        }
        close(out[1]);
        int waited = 0;
        while (waitpid(pid, &st, WNOHANG) == 0 && waited++ < 200)
            usleep(50000);
        if (waited > 200) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
        char got[8] = {0};
        ssize_t nr = read(out[0], got, sizeof got - 1);
        close(out[0]);
        EXPECT(waited <= 200 && nr == 3 && strcmp(got, "hi\n") == 0);
    }

    /* two threads forking at once (a helper's hunt: the interposer kept one
     * pipe for the process, and 2 of 3 runs had children killed by SIGPIPE,
     * parents not waiting for their own child, pipes left open) */
    {
        int before = count_fds();
        pthread_t ft[2];
        for (int i = 0; i < 2; i++)
            EXPECT(pthread_create(&ft[i], NULL, fork_many, p) == 0);
        long bad = 0;
        for (int i = 0; i < 2; i++) {
            void *got;
            pthread_join(ft[i], &got);
            bad += (long)got;
        }
        EXPECT(bad == 0);
        EXPECT(count_fds() == before);
    }
    /* what libc allocates for itself is glibc's: a FILE (whose lock glibc
     * resets in a fork's child), a thread's block of keys past the 32nd
     * (zeroed there); the program's calls are ours */
    {
        FILE *f = fopen("/dev/null", "w");
        EXPECT(f != NULL && persistent_space_of(f) == NULL);
        if (f != NULL)
            fclose(f);
        void *mine2 = malloc(100);
        EXPECT(persistent_space_of(mine2) != NULL);
        free(mine2);
        for (int i = 0; i < 40; i++)
            EXPECT(pthread_key_create(&tsd_key[i], NULL) == 0);
        pthread_t th;
        EXPECT(pthread_create(&th, NULL, tsd_holder, NULL) == 0);
        while (atomic_load(&tsd_stage) != 1)
            usleep(100);
        pid_t tp = fork();
        if (tp == 0)
            _exit(0);
        int tst;
        EXPECT(tp > 0 && waitpid(tp, &tst, 0) == tp && WIFEXITED(tst) && WEXITSTATUS(tst) == 0);
        atomic_store(&tsd_stage, 2);
        void *kept = NULL;
        pthread_join(th, &kept);
        EXPECT(kept == (void *)0x1234);
        for (int i = 0; i < 40; i++)
            pthread_key_delete(tsd_key[i]);
    }
    /* forks without exec nested 20 deep, each child reading its parent's
     * heap (16 was the most) */
    int depth = 0;
    for (; depth < 20; depth++) {
        pid = fork();
        if (pid < 0 && depth > 0)
            _exit(1);
        if (pid < 0) {
            EXPECT(pid >= 0);
            break;
        }
        if (pid > 0) {
            int cst;
            int ok = waitpid(pid, &cst, 0) == pid && WIFEXITED(cst) && WEXITSTATUS(cst) == 0;
            if (depth > 0)
                _exit(!ok);
            EXPECT(ok);
            break;
        }
        if (strcmp(p, "parent") != 0)
            _exit(1);
    }
    if (depth == 20)
        _exit(0);                       /* the deepest child */
    free(p);
    if (failures == 0)
        printf("interposer: every call as glibc's, the forked child's heap its own\n");
    return failures != 0;
}

/* Every system call the library makes: files, locks, mappings, time,
 * randomness and membarrier.  Errors come back as -errno.
 *
 * _GNU_SOURCE: MAP_FIXED_NOREPLACE, MAP_NORESERVE, getrandom, syscall,
 * pwritev2, O_CLOEXEC, sched_getaffinity, CPU_COUNT and mremap are Linux/GNU
 * interfaces. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/membarrier.h>
#endif

#include "internal.h"

#if defined(__SANITIZE_THREAD__)
#define PM_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PM_UNDER_TSAN 1
#endif
#endif

/* Without waiting: a FIFO's open for reading would wait for a writer at
 * the other end (a review found read-only and private opens of one hung);
 * anything but a regular file is refused here (EINVAL, as
 * os_file_size), before it is read. */
int os_open(const char *path, int writable, int *fd)
{
    int f = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK);
    if (f < 0)
        return -errno;
    struct stat st;
    if (fstat(f, &st) != 0) {
        int e = errno;
        close(f);
        return -e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return -EINVAL;
    }
    int fl = fcntl(f, F_GETFL);
    if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(f);
        return -e;
    }
    *fd = f;
    return 0;
}

int os_create_temp(const char *path, unsigned mode, int *fd, char *tmp,
                   size_t tmp_len)
{
    for (int attempt = 0; attempt < 64; attempt++) {
        uint64_t r;
        os_random(&r, sizeof r);
        int n = snprintf(tmp, tmp_len, "%s.%012llx.tmp", path,
                         (unsigned long long)(r & 0xffffffffffffull));
        if (n < 0 || (size_t)n >= tmp_len)
            return -ENAMETOOLONG;
        int f = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (f >= 0) {
            *fd = f;
            return 0;
        }
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

int os_link(const char *from, const char *to)
{
    return link(from, to) == 0 ? 0 : -errno;
}

/* The directory part of path ("." when it has none) in buf. */
static int dir_of(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
    if (n + 2 > len)
        return -ENAMETOOLONG;
    if (n == 0)
        memcpy(buf, ".", 2);
    else {
        memcpy(buf, path, n);
        buf[n] = '\0';
    }
    return 0;
}

/* An unnamed file in path's directory (O_TMPFILE): a process killed before
 * os_link_unnamed leaves nothing behind.  -EOPNOTSUPP (or another error)
 * where the file system or kernel does not have it. */
int os_create_unnamed(const char *path, unsigned mode, int *fd)
{
#if defined(O_TMPFILE)
    char dir[4096];
    int r = dir_of(path, dir, sizeof dir);
    if (r < 0)
        return r;
    int f = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, (mode_t)mode);
    if (f < 0)
        return -errno;
    *fd = f;
    return 0;
#else
    (void)path;
    (void)mode;
    (void)fd;
    return -EOPNOTSUPP;
#endif
}

/* A file with no name for a scratch space: in memory (memfd) when dir is
 * NULL, else an unnamed file in the directory dir (O_TMPFILE).  Gone when
 * the last descriptor of it closes. */
int os_create_scratch(const char *dir, int *fd)
{
    int f;
    if (dir == NULL) {
#if defined(__linux__)
        f = (int)syscall(SYS_memfd_create, "persistent_mem scratch", 1u /* MFD_CLOEXEC */);
#else
        errno = EOPNOTSUPP;
        f = -1;
#endif
    } else {
#if defined(O_TMPFILE)
        f = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, (mode_t)0600);
#else
        errno = EOPNOTSUPP;
        f = -1;
#endif
    }
    if (f < 0)
        return -errno;
    *fd = f;
    return 0;
}

/* Gives the unnamed file fd the name path; -EEXIST if path exists. */
int os_link_unnamed(int fd, const char *path)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0)
        return 0;
    if (errno != ENOENT)
        return -errno;
#if defined(AT_EMPTY_PATH)
    /* no /proc: this form needs CAP_DAC_READ_SEARCH */
    if (linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0)
        return 0;
#endif
    return -errno;
}

/* Makes a new name in path's directory durable. */
int os_fsync_dir(const char *path)
{
    char dir[4096];
    int r = dir_of(path, dir, sizeof dir);
    if (r < 0)
        return r;
    int f = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f < 0)
        return -errno;
    r = fsync(f) == 0 ? 0 : -errno;
    close(f);
    return r == -EINVAL ? 0 : r;        /* some file systems cannot */
}

/* Removes the temporary files (PATH.<12 hex digits>.tmp, os_create_temp)
 * that creators of path killed before they finished left behind: a live
 * creator holds its file's flock, a dead one does not, and a file younger
 * than a few seconds is left to its creator in any case. */
void os_clean_stale_temps(const char *path)
{
    char dir[4096];
    if (dir_of(path, dir, sizeof dir) < 0)
        return;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        size_t len = strlen(n);
        if (len != blen + 17 || memcmp(n, base, blen) != 0 || n[blen] != '.' ||
            strcmp(n + blen + 13, ".tmp") != 0 ||
            strspn(n + blen + 1, "0123456789abcdef") != 12)
            continue;
        int f = openat(dirfd(d), n, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (f < 0)
            continue;
        struct stat st;
        if (flock(f, LOCK_EX | LOCK_NB) == 0 && fstat(f, &st) == 0 &&
            S_ISREG(st.st_mode) && time(NULL) - st.st_mtime > 5)
            (void)unlinkat(dirfd(d), n, 0);
        close(f);
    }
    closedir(d);
}

void os_unlink(const char *path)
{
    (void)unlink(path);
}

/* The writer's lock is flock(2) LOCK_EX.  A view's persistent_check
 * holds LOCK_SH while it judges a rollback (recover.c pm_rollback_judge),
 * on a description of its own, for one trial.  A writer that finds the
 * lock held shared waits for those (up to two seconds) rather than
 * calling the space busy, and says it waits with an OFD lock on byte 0
 * (fcntl, independent of flock), which a view tests before and after it
 * takes LOCK_SH and then does not judge: views checking in a loop cannot
 * keep a writer out (a review found one turned away after 2.9 s by four
 * such views). */
static bool writer_waits(int fd)
{
#if defined(F_OFD_GETLK)
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_RDLCK;
    fl.l_whence = SEEK_SET;
    fl.l_len = 1;
    return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
#else
    (void)fd;
    return false;
#endif
}

static bool writer_announce(int fd, bool on)
{
#if defined(F_OFD_SETLK)
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = on ? F_WRLCK : F_UNLCK;
    fl.l_whence = SEEK_SET;
    fl.l_len = 1;
    return fcntl(fd, F_OFD_SETLK, &fl) == 0;
#else
    (void)fd;
    (void)on;
    return false;
#endif
}

/* Whether the lock is held shared only (by views), not by a writer. */
static bool held_shared(int fd)
{
    while (flock(fd, LOCK_SH | LOCK_NB) != 0)
        if (errno != EINTR)
            return false;
    (void)flock(fd, LOCK_UN);
    return true;
}

int os_lock_writer(int fd)
{
    unsigned waited_ms = 0;
    bool announced = false;
    int r = 0;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK) {
            r = -errno;
            break;
        }
        if (waited_ms >= 2000 || !held_shared(fd)) {
            r = PERSISTENT_E_BUSY;          /* a writer has it */
            break;
        }
        if (!announced)
            announced = writer_announce(fd, true);
        os_sleep_us(1000);
        waited_ms++;
    }
    if (announced)
        (void)writer_announce(fd, false);
    return r;
}

int os_lock_view(int fd)
{
    if (writer_waits(fd))
        return PERSISTENT_E_BUSY;
    while (flock(fd, LOCK_SH | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        return errno == EWOULDBLOCK ? PERSISTENT_E_BUSY : -errno;
    }
    return 0;
}

bool os_lock_judge(int fd)
{
    if (writer_waits(fd))
        return false;
    while (flock(fd, LOCK_SH | LOCK_NB) != 0)
        if (errno != EINTR)
            return false;
    if (writer_waits(fd)) {
        (void)flock(fd, LOCK_UN);
        return false;
    }
    return true;
}

bool os_no_writer(int fd, const struct os_file_id *id)
{
    int f = os_reopen_private(fd);
    if (f < 0)
        return false;
    struct os_file_id same = *id;
    same.mark = UINT64_MAX;             /* its own file position */
    bool none = os_fd_verify(f, &same) == 0 && !writer_waits(f) && held_shared(f);
    os_close(f);
    return none;
}

/* In a child after fork(): the mapping of [addr, addr + len) made from fd
 * made again, copy-on-write, from a description of the child's own, and fd
 * closed, so that nothing of the child holds fd's description (and the
 * flock on it).  Only async-signal-safe calls, mmap and memcpy.  Under
 * strict overcommit a private mapping of the whole range may be refused:
 * then only the file's length is mapped (as a private open does).  When
 * the file cannot be mapped again at all (fd is -1, a descriptor the
 * program closed or reused; no /proc after a chroot; a file the process
 * may no longer open after dropping privileges), its first used bytes (the
 * pages the space has) are copied into memory of the child's own put in
 * the mapping's place: the child reads what it read before (a helper's
 * hunt: such a child of a program on the LD_PRELOAD interposer died
 * copying the heap, unreadable then).  What is left (past the file's end,
 * or all of it when there is no memory for the copy) is reserved and
 * unreadable. */
void os_release_after_fork(int fd, void *addr, uint64_t len, uint64_t used)
{
    int f = fd >= 0 ? os_reopen_private(fd) : -1;
    uint64_t mapped = 0;
    if (f >= 0) {
        struct stat st;
        if (mmap(addr, len, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_NORESERVE,
                 f, 0) != MAP_FAILED)
            mapped = len;
        else if (fstat(f, &st) == 0 && st.st_size > 0) {
            uint64_t part = (uint64_t)st.st_size < len ? (uint64_t)st.st_size : len;
            part = (part + 4095) & ~(uint64_t)4095;
            if (part > len)
                part = len;
            if (mmap(addr, part, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE |
                     MAP_NORESERVE, f, 0) != MAP_FAILED)
                mapped = part;
        }
        (void)close(f);
    }
    used = (used + 4095) & ~(uint64_t)4095;
    if (mapped == 0 && used > 0 && used <= len) {
        void *c = mmap(NULL, used, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (c != MAP_FAILED) {
            memcpy(c, addr, used);      /* still the parent's shared pages */
            if (mremap(c, used, used, MREMAP_MAYMOVE | MREMAP_FIXED, addr) != MAP_FAILED)
                mapped = used;
            else
                (void)munmap(c, used);
        }
    }
    if (mapped < len)
        (void)mmap((char *)addr + mapped, len - mapped, PROT_NONE, MAP_FIXED | MAP_PRIVATE |
                   MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (fd >= 0)
        (void)close(fd);
}

void os_unlock(int fd)
{
    (void)flock(fd, LOCK_UN);
}

void os_close(int fd)
{
    if (fd >= 0)
        (void)close(fd);
}

int os_file_size(int fd, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    *size = (uint64_t)st.st_size;
    return 0;
}

/* Up to len bytes at off: the count read (short only at the end of the
 * file) or -errno. */
ssize_t os_pread_upto(int fd, void *buf, size_t len, uint64_t off)
{
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, p + got, len - got, (off_t)(off + got));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int os_pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    ssize_t n = os_pread_upto(fd, buf, len, off);
    if (n < 0)
        return (int)n;
    return (size_t)n == len ? 0 : -EIO;
}

/* Every call here that may lengthen a file looks at the file size limit
 * first (os_write_fits): past it the kernel sends SIGXFSZ, whose default
 * ends the process, and only where it is ignored says EFBIG; a growth or
 * a create past the limit is a failed call (EFBIG) either way.  A write
 * is held to the limit wherever it lands, as the kernel holds it; an
 * allocation or a truncate only where it would lengthen the file (backing
 * a punched hole below the file's end is no extension). */
static bool extend_fits(int fd, uint64_t end)
{
    uint64_t size;
    return os_write_fits(end) || (os_file_size(fd, &size) == 0 && size >= end);
}

int os_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    if (!os_write_fits(off + len))
        return -EFBIG;
    const char *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Real blocks behind [off, off+len), so that running out of disk shows up
 * here as ENOSPC and never later as SIGBUS on a store. */
int os_allocate(int fd, uint64_t off, uint64_t len)
{
    if (!extend_fits(fd, off + len))
        return -EFBIG;
    int r;
    do
        r = posix_fallocate(fd, (off_t)off, (off_t)len);
    while (r == EINTR);
    return -r;
}

/* os_allocate where other threads may be storing into the range through
 * the mapping: the file system's own fallocate or nothing.  Where it has
 * none, glibc's posix_fallocate writes a zero byte into every block it
 * reads as zero, which would undo a store made in between; such a file
 * system backs a page when it is written, as it always does there. */
int os_allocate_live(int fd, uint64_t off, uint64_t len)
{
    if (!extend_fits(fd, off + len))
        return -EFBIG;
#ifdef __linux__
    for (;;) {
        if (fallocate(fd, 0, (off_t)off, (off_t)len) == 0)
            return 0;
        if (errno == EOPNOTSUPP || errno == ENOSYS)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
#else
    (void)fd;
    (void)off;
    (void)len;
    return 0;
#endif
}

/* The file system's preferred block size for fd (st_blksize), 0 if none. */
uint64_t os_block_size(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_blksize > 0 ? (uint64_t)st.st_blksize : 0;
}

/* Gives the blocks behind [off, off+len) back to the file system; the
 * file keeps its size and reads zeros there. */
int os_punch(int fd, uint64_t off, uint64_t len)
{
#if defined(FALLOC_FL_PUNCH_HOLE) && defined(FALLOC_FL_KEEP_SIZE)
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
                  (off_t)len) == 0)
        return 0;
    return -errno;
#else
    (void)fd;
    (void)off;
    (void)len;
    return -EOPNOTSUPP;
#endif
}

static int fill_holes(int fd, uint64_t from, uint64_t to);

/* Allocates every hole in [from, to): after a crash, pages freed with
 * os_punch may be reused without having been backed again. */
int os_fill_holes(int fd, uint64_t from, uint64_t to)
{
    /* SEEK_HOLE/SEEK_DATA move the file position, which carries the
     * descriptor's mark (os_fd_mark): put it back */
    off_t saved = lseek(fd, 0, SEEK_CUR);
    int r = fill_holes(fd, from, to);
    if (saved >= 0)
        (void)lseek(fd, saved, SEEK_SET);
    return r;
}

static int fill_holes(int fd, uint64_t from, uint64_t to)
{
    off_t pos = (off_t)from;
    while ((uint64_t)pos < to) {
        off_t hole = lseek(fd, pos, SEEK_HOLE);
        if (hole < 0)
            return errno == EINVAL || errno == ENXIO ? 0 : -errno;
        if ((uint64_t)hole >= to)
            return 0;
        off_t data = lseek(fd, hole, SEEK_DATA);
        if (data < 0 || (uint64_t)data > to)
            data = (off_t)to;
        int r = os_allocate(fd, (uint64_t)hole, (uint64_t)(data - hole));
        if (r < 0)
            return r;
        pos = data;
    }
    return 0;
}

/* A descriptor of the same file with a file position of its own (SEEK_DATA
 * moves it, and fd's position carries os_fd_mark); -errno.  The path is
 * written by hand, not with snprintf: a forked child's fork handler calls
 * this (os_release_after_fork), where only async-signal-safe calls do. */
int os_reopen_private(int fd)
{
    if (fd < 0)
        return -EBADF;
    char proc[32] = "/proc/self/fd/";
    char digits[12];
    int n = 0;
    for (unsigned v = (unsigned)fd; n == 0 || v != 0; v /= 10)
        digits[n++] = (char)('0' + v % 10);
    size_t at = strlen(proc);
    while (n > 0)
        proc[at++] = digits[--n];
    proc[at] = '\0';
    /* not blocking, no controlling terminal: the number may name a FIFO or
     * a device by now (the callers verify the file afterwards) */
    int f = open(proc, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    return f >= 0 ? f : -errno;
}

/* The first offset in [off, end) that may hold data, end if none: what
 * lies before it is a hole, which reads as zeros. */
uint64_t os_next_data(int fd, uint64_t off, uint64_t end)
{
    off_t d = lseek(fd, (off_t)off, SEEK_DATA);
    if (d < 0)
        return errno == ENXIO ? end : off;      /* no more data; or unknown */
    return (uint64_t)d < end ? (uint64_t)d : end;
}

/* The first hole in [off, end), end if none. */
uint64_t os_next_hole(int fd, uint64_t off, uint64_t end)
{
    off_t h = lseek(fd, (off_t)off, SEEK_HOLE);
    if (h < 0)
        return end;
    return (uint64_t)h < end ? (uint64_t)h : end;
}

int os_truncate(int fd, uint64_t size)
{
    if (!extend_fits(fd, size))
        return -EFBIG;
    return ftruncate(fd, (off_t)size) == 0 ? 0 : -errno;
}

int os_fsync(int fd)
{
    return fsync(fd) == 0 ? 0 : -errno;
}

int os_fdatasync(int fd)
{
    return fdatasync(fd) == 0 ? 0 : -errno;
}

/* pwrite with synchronized I/O data integrity (O_DSYNC's): the bytes are
 * durable when it returns 0, as a store written back and fenced is.
 * Each piece with RWF_DSYNC; where the kernel refuses the flag (before
 * Linux 4.7: EOPNOTSUPP, or ENOSYS before pwritev2; EINVAL taken alike,
 * defensively: a plain pwrite then reports any other cause), written
 * plainly and then fdatasync. */
int os_pwrite_durable(int fd, const void *buf, size_t len, uint64_t off)
{
    if (!os_write_fits(off + len))
        return -EFBIG;
#if defined(RWF_DSYNC)
    const char *p = buf;
    while (len > 0) {
        struct iovec iov = {(void *)(uintptr_t)p, len};
        ssize_t n = pwritev2(fd, &iov, 1, (off_t)off, RWF_DSYNC);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENOSYS)
                return -errno;
            break;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    if (len == 0)
        return 0;
    buf = p;
#endif
    int r = os_pwrite_all(fd, buf, len, off);
    return r == 0 ? os_fdatasync(fd) : r;
}

/* A descriptor the library keeps for a space's life, moved high: to 960
 * (64 below the usual limit of 1,024; 64 below the limit, or a quarter
 * below a limit under 128) where the limit allows, else to 64, else to
 * 10 (the same open description: its flock and mark go with it).
 * Programs and shells give out the low numbers themselves -- `exec
 * 3>file`, dup2 onto 3-9, `exec 200>lock` for flock(1) -- and that took
 * the space's descriptor from under it: a bash script run on the
 * LD_PRELOAD interposer had its next fork find the heap unreadable, and
 * its heap stopped growing (PERSISTENT_E_FILE_LOST).  It was 64 from
 * 2026-12-05, and a helper's hunt then had `exec 64>file` take it, and a
 * limit of 64 or less (`ulimit -n 20`) leave it at 3.  A program that
 * closes every descriptor (closefrom) still takes it. */
int os_fd_move_high(int fd)
{
    struct rlimit rl;
    uint64_t lim = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                       ? (uint64_t)rl.rlim_cur : 1024;
    lim = lim < 1024 ? lim : 1024;
    int bases[3] = {(int)(lim > 128 ? lim - 64 : lim - lim / 4), 64, 10};
    for (int i = 0; i < 3; i++) {
        if (fd >= bases[i])
            return fd;
        if ((uint64_t)bases[i] >= lim)
            continue;
        int g = fcntl(fd, F_DUPFD_CLOEXEC, bases[i]);
        if (g >= 0) {
            (void)close(fd);
            return g;
        }
    }
    return fd;                          /* every number from 10 up taken */
}

/* Records which file fd names and gives its open file description a mark:
 * a file position no other description of any file is likely to have (the
 * library only uses pread/pwrite, so the position is free to carry it). */
int os_fd_mark(int fd, struct os_file_id *id)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    id->dev = (uint64_t)st.st_dev;
    id->ino = (uint64_t)st.st_ino;
    uint64_t r;
    os_random(&r, sizeof r);
    id->mark = (UINT64_C(1) << 50) | ((r & ((UINT64_C(1) << 38) - 1)) << 12);
    if (lseek(fd, (off_t)id->mark, SEEK_SET) != (off_t)id->mark)
        id->mark = UINT64_MAX;          /* not seekable there: file only */
    return 0;
}

/* 0 when fd is still the descriptor os_fd_mark saw, -EBADF when it was
 * closed or now names another open file (the program closed it and
 * reopened something else under the same number: daemonising, closefrom).
 * Checked right before each use; a descriptor closed and reused between
 * the check and the call that follows it in another thread is not caught. */
int os_fd_verify(int fd, const struct os_file_id *id)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return -EBADF;
    if ((uint64_t)st.st_dev != id->dev || (uint64_t)st.st_ino != id->ino)
        return -EBADF;
    if (id->mark != UINT64_MAX &&
        lseek(fd, 0, SEEK_CUR) != (off_t)id->mark)
        return -EBADF;
    return 0;
}

int os_msync(void *addr, size_t len)
{
    uintptr_t a = (uintptr_t)addr & ~(uintptr_t)4095;
    len += (uintptr_t)addr - a;
    return msync((void *)a, len, MS_SYNC) == 0 ? 0 : -errno;
}

static void *reserve_at(uint64_t addr, uint64_t size)
{
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
#if !defined(PM_UNDER_TSAN) && defined(MAP_FIXED_NOREPLACE)
    /* ThreadSanitizer aborts on MAP_FIXED_NOREPLACE outside its application
     * ranges; a plain hint has the same outcome once the result is checked. */
    flags |= MAP_FIXED_NOREPLACE;
#endif
    void *p = mmap((void *)(uintptr_t)addr, size, PROT_NONE, flags, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if ((uint64_t)(uintptr_t)p != addr) {
        /* an old kernel treating the flag as a hint, or a plain hint */
        munmap(p, size);
        return NULL;
    }
    return p;
}

void *os_reserve(uint64_t preferred, uint64_t size, uint64_t align,
                 bool *at_preferred)
{
    *at_preferred = false;
    if (preferred != 0 && preferred % align == 0) {
        void *p = reserve_at(preferred, size);
        if (p) {
            *at_preferred = true;
            return p;
        }
    }
    uint64_t span = size + align;
    char *p = mmap(NULL, span, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uintptr_t a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    if (a > (uintptr_t)p)
        munmap(p, a - (uintptr_t)p);
    uintptr_t end = (uintptr_t)p + span;
    if (end > a + size)
        munmap((void *)(a + size), end - (a + size));
    return (void *)a;
}

/* Maps [off, off + len) of the file at addr (inside a reservation).  len
 * may run past the end of the file: those pages fault (SIGBUS) until the
 * file is extended, and then show its contents with no new mmap, which is
 * how a space grows in place without a remap that could race with threads
 * using the mapping. */
int os_map_file(void *addr, uint64_t len, int fd, uint64_t off, uint32_t mode,
                bool sync)
{
    int prot = mode == PM_MODE_READONLY ? PROT_READ : PROT_READ | PROT_WRITE;
    /* a private mapping of the whole reservation is not charged up front:
     * only the pages a forensic open writes are its own */
    int flags = MAP_FIXED | (mode == PM_MODE_PRIVATE ? MAP_PRIVATE | MAP_NORESERVE
                                                     : MAP_SHARED);
#if defined(MAP_SYNC) && defined(MAP_SHARED_VALIDATE)
    if (sync)
        flags = MAP_FIXED | MAP_SHARED_VALIDATE | MAP_SYNC;
#else
    (void)sync;
#endif
    void *p = mmap(addr, len, prot, flags, fd, (off_t)off);
    if (p == MAP_FAILED)
        return -errno;
    return 0;
}

/* Zeroed private memory over [addr, addr + len) (whole pages), in place of
 * what was mapped there. */
int os_map_zero(void *addr, uint64_t len)
{
    void *p = mmap(addr, len, PROT_READ | PROT_WRITE,
                   MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? -errno : 0;
}

/* A file on a DAX file system (real persistent memory) accepts MAP_SYNC:
 * its pages are the media, and cache-line write-back makes stores durable. */
bool os_probe_dax(int fd)
{
#if defined(MAP_SYNC) && defined(MAP_SHARED_VALIDATE)
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                   MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);
    if (p == MAP_FAILED)
        return false;
    munmap(p, 4096);
    return true;
#else
    (void)fd;
    return false;
#endif
}

uint32_t os_thread_id(void)
{
    return (uint32_t)syscall(SYS_gettid);
}

/* Whether the thread tid of this process has ended (a TID the kernel gave
 * to a new thread since reads as alive: the caller only loses a chance). */
bool os_thread_gone(uint32_t tid)
{
    int saved = errno;
    bool gone = syscall(SYS_tgkill, (long)getpid(), (long)tid, 0L) != 0 && errno == ESRCH;
    errno = saved;
    return gone;
}

void os_unmap(void *addr, uint64_t len)
{
    if (addr && len)
        (void)munmap(addr, len);
}

/* Volatile memory, reserved and zero-filled on first touch.  A reservation
 * of OS_HUGE or more starts at a multiple of OS_HUGE (the excess mapped
 * around it is unmapped again), so that os_vol_hugepages can give whole
 * huge pages to the arrays laid out at such multiples inside it. */
void *os_vol_alloc(size_t size)
{
    /* the tail to unmap starts at a page boundary: the mapping covers
     * whole pages, and os_vol_free's munmap of size bytes takes them all */
    size_t pg = os_page_size();
    size_t whole = (size + pg - 1) & ~(pg - 1);
    size_t extra = whole >= OS_HUGE ? OS_HUGE : 0;
    if (whole < size || whole + extra < whole)
        return NULL;
    char *p = mmap(NULL, whole + extra, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (extra == 0)
        return p;
    size_t head = (size_t)(-(uintptr_t)p & (OS_HUGE - 1));
    if (head != 0)
        (void)munmap(p, head);
    if (extra - head != 0)
        (void)munmap(p + head + whole, extra - head);
    return p + head;
}

/* Whether a write may reach offset end of a file without passing the
 * process's file size limit (RLIMIT_FSIZE), which a store through a
 * mapping never meets and a pwrite past it meets as SIGXFSZ (by default
 * the end of the process). */
bool os_write_fits(uint64_t end)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) != 0)
        return false;
    return rl.rlim_cur == RLIM_INFINITY || (uint64_t)rl.rlim_cur >= end;
}

/* A hint that [p, p + len) is about to be written densely: where a guest's
 * first touch of a page costs microseconds (a page fault each, 5-8 us on
 * the 2-core guest of 2026-12-05), one fault for 2 MiB instead of 512 is
 * most of an open's time (docs/design.md "Recovery").  Only the whole huge
 * pages inside the range are advised, so nothing outside it is touched
 * more than asked; without transparent huge pages it does nothing. */
void os_vol_hugepages(void *p, size_t len)
{
#if defined(MADV_HUGEPAGE)
    uintptr_t a = ((uintptr_t)p + OS_HUGE - 1) & ~(uintptr_t)(OS_HUGE - 1);
    uintptr_t e = ((uintptr_t)p + len) & ~(uintptr_t)(OS_HUGE - 1);
    if (e > a) {
        int saved = errno;
        (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
        errno = saved;
    }
#else
    (void)p;
    (void)len;
#endif
}

void os_vol_free(void *p, size_t size)
{
    if (p)
        (void)munmap(p, size);
}

uint64_t os_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct os_part {
    void (*fn)(void *);
    void *arg;
};

static void *os_part_run(void *a)
{
    struct os_part *p = a;
    p->fn(p->arg);
    return NULL;
}

void os_run_parallel(void (*fn)(void *), void *const *args, unsigned n)
{
    pthread_t th[OS_PARALLEL_MAX];
    struct os_part part[OS_PARALLEL_MAX];
    bool made[OS_PARALLEL_MAX] = {false};
    int saved = errno;
    /* no cancellation inside (a join is a cancellation point, and a
     * cancelled caller would leave the helpers at work on its frame) */
    int cancel;
    (void)pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
    /* the helpers start with every signal blocked but those a fault raises
     * (a program's handlers run on its own threads, not on the library's;
     * a fault blocked would end the process past every handler); the
     * caller's mask is back before it runs its own part */
    sigset_t mask, old;
    sigfillset(&mask);
    static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
        sigdelset(&mask, faults[i]);
    pthread_attr_t attr;
    bool masked = n > 1 && pthread_attr_init(&attr) == 0;
    if (masked) {
        /* small stacks: a part makes system calls and reads memory (64
         * KiB would do; sanitizers' frames are larger) */
        (void)pthread_attr_setstacksize(&attr, (size_t)256 << 10);
        if (pthread_sigmask(SIG_SETMASK, &mask, &old) != 0) {
            (void)pthread_attr_destroy(&attr);
            masked = false;
        }
    }
    for (unsigned i = 1; masked && i < n && i < OS_PARALLEL_MAX; i++) {
        part[i].fn = fn;
        part[i].arg = args[i];
        made[i] = pthread_create(&th[i], &attr, os_part_run, &part[i]) == 0;
    }
    if (masked) {
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        (void)pthread_attr_destroy(&attr);
    }
    if (n > 0)
        fn(args[0]);
    for (unsigned i = 1; i < n; i++) {
        if (i < OS_PARALLEL_MAX && made[i])
            (void)pthread_join(th[i], NULL);
        else
            fn(args[i]);            /* no thread for it: here, in turn */
    }
    (void)pthread_setcancelstate(cancel, NULL);
    errno = saved;
}

void os_yield(void)
{
    sched_yield();
}

uint64_t os_time_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void os_random(void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    /* no entropy source: still distinct per call and process */
    static pm_atomic_u64 counter;
    uint64_t x = os_time_ns() ^ ((uint64_t)getpid() << 32) ^
                 pm_fetch_add_relaxed(&counter, 0x9e3779b97f4a7c15u);
    while (len > 0) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        *p++ = (char)x;
        len--;
    }
}

/* ---- memory protection and faults (automatic transactions, tx.c) ---- */

size_t os_page_size(void)
{
    long n = sysconf(_SC_PAGESIZE);
    return n > 0 ? (size_t)n : 4096;
}

int os_protect(void *addr, size_t len, bool writable)
{
    return mprotect(addr, len, writable ? PROT_READ | PROT_WRITE : PROT_READ) == 0 ? 0 : -errno;
}

static bool (*fault_fn)(void *addr);
static struct sigaction fault_old;

static void on_fault(int sig, siginfo_t *si, void *ctx)
{
    if (fault_fn != NULL && fault_fn(si->si_addr))
        return;                         /* handled: the access is retried */
    /* not ours: whoever had the signal before */
    if ((fault_old.sa_flags & SA_SIGINFO) && fault_old.sa_sigaction != NULL) {
        fault_old.sa_sigaction(sig, si, ctx);
    } else if (fault_old.sa_handler != SIG_DFL && fault_old.sa_handler != SIG_IGN) {
        fault_old.sa_handler(sig);
    } else {
        /* the default action, on the retried access */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(sig, &dfl, NULL);
    }
}

/* Write faults go to fn first (true: handled, retry the access); others to
 * the handler that was there.  Installed once per process; -EBUSY while
 * another thread is installing it (not waited for: a thread stopped
 * there would hold up every automatic transaction's begin); after a
 * failure the next call tries again. */
static pm_atomic_u32 faults_state;      /* 0 none, 1 installing, 2 installed */

int os_catch_faults(bool (*fn)(void *addr))
{
    uint32_t zero = 0;
    if (pm_load_acquire(&faults_state) == 2)
        return 0;
    if (!pm_cas_strong_acq_rel(&faults_state, &zero, 1u))
        return zero == 2 ? 0 : -EBUSY;
    fault_fn = fn;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    int r = sigaction(SIGSEGV, &sa, &old) == 0 ? 0 : -errno;
    if (r == 0)
        fault_old = old;
    pm_store_release(&faults_state, r == 0 ? 2u : 0u);
    return r;
}

/* A fork's child whose parent was installing the handler (no thread of the
 * child is): installed if the kernel has it, and then the action it
 * replaced is the default one (the parent may not have kept it yet); not
 * installed otherwise. */
void os_faults_after_fork(void)
{
    if (pm_load_relaxed(&faults_state) != 1)
        return;
    struct sigaction cur;
    bool ours = sigaction(SIGSEGV, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
                cur.sa_sigaction == on_fault;
    if (ours)
        memset(&fault_old, 0, sizeof fault_old);
    pm_store_relaxed(&faults_state, ours ? 2u : 0u);
}

void os_sleep_us(unsigned us)
{
    struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000};
    nanosleep(&ts, NULL);
}

/* A message on stderr and the end of the process (async-signal-safe). */
void os_fatal(const char *msg)
{
    size_t n = strlen(msg);
    while (n > 0) {
        ssize_t w = write(2, msg, n);
        if (w <= 0)
            break;
        msg += w;
        n -= (size_t)w;
    }
    abort();
}

int os_membarrier_init(void)
{
#if defined(__linux__) && defined(__NR_membarrier)
    static pm_atomic_u32 state;   /* 0 unknown, 1 usable, 2 not */
    uint32_t s = pm_load_acquire(&state);
    if (s == 0) {
        long q = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
        s = 2;
        if (q >= 0 && (q & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
            syscall(__NR_membarrier,
                    MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
            s = 1;
        pm_store_release(&state, s);
    }
    return s == 1 ? 0 : -ENOSYS;
#else
    return -ENOSYS;
#endif
}

int os_membarrier(void)
{
#if defined(__linux__) && defined(__NR_membarrier)
    if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
        return 0;
    return -errno;
#else
    return -ENOSYS;
#endif
}

/* The CPUs this thread may run on (its affinity, which a cpuset or
 * taskset narrows), else the online ones; at least 1. */
uint32_t os_ncpu(void)
{
    int saved = errno;
    long n = 0;
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
#endif
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    errno = saved;
    return n > 0 ? (uint32_t)n : 1u;
}

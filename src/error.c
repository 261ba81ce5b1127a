/* Error codes, the per-thread error message and the misuse hook. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local char errbuf[512] PM_TLS_IE;

static persistent_error_fn *_Atomic hook_fn;
static void *_Atomic hook_arg;

int pm_err(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return code;
}

const char *persistent_errormsg(void)
{
    return errbuf[0] ? errbuf : "no error";
}

/* The system's errors in words, as the C locale's strerror has them, but
 * without strerror: it may translate, and glibc's translation takes the
 * locale lock, which setlocale holds while it allocates -- a program on
 * the LD_PRELOAD interposer whose first malloc (inside setlocale) could
 * not open its space hung for good on the message (a helper's hunt:
 * bash under `ulimit -f 1000`).  The errors the library passes on; any
 * other by its number. */
static _Thread_local char errno_buf[40] PM_TLS_IE;

static const char *errno_text(int e)
{
    switch (e) {
    case EPERM: return "Operation not permitted";
    case ENOENT: return "No such file or directory";
    case ESRCH: return "No such process";
    case EINTR: return "Interrupted system call";
    case EIO: return "Input/output error";
    case ENXIO: return "No such device or address";
    case E2BIG: return "Argument list too long";
    case ENOEXEC: return "Exec format error";
    case EBADF: return "Bad file descriptor";
    case ECHILD: return "No child processes";
    case EAGAIN: return "Resource temporarily unavailable";
    case ENOMEM: return "Cannot allocate memory";
    case EACCES: return "Permission denied";
    case EFAULT: return "Bad address";
    case EBUSY: return "Device or resource busy";
    case EEXIST: return "File exists";
    case EXDEV: return "Invalid cross-device link";
    case ENODEV: return "No such device";
    case ENOTDIR: return "Not a directory";
    case EISDIR: return "Is a directory";
    case EINVAL: return "Invalid argument";
    case ENFILE: return "Too many open files in system";
    case EMFILE: return "Too many open files";
    case ENOTTY: return "Inappropriate ioctl for device";
    case ETXTBSY: return "Text file busy";
    case EFBIG: return "File too large";
    case ENOSPC: return "No space left on device";
    case ESPIPE: return "Illegal seek";
    case EROFS: return "Read-only file system";
    case EMLINK: return "Too many links";
    case EPIPE: return "Broken pipe";
    case EDOM: return "Numerical argument out of domain";
    case ERANGE: return "Numerical result out of range";
    case EDEADLK: return "Resource deadlock avoided";
    case ENAMETOOLONG: return "File name too long";
    case ENOLCK: return "No locks available";
    case ENOSYS: return "Function not implemented";
    case ELOOP: return "Too many levels of symbolic links";
    case EOVERFLOW: return "Value too large for defined data type";
    case EOPNOTSUPP: return "Operation not supported";
    case EDQUOT: return "Disk quota exceeded";
    case ESTALE: return "Stale file handle";
    case ETIMEDOUT: return "Connection timed out";
    case ENODATA: return "No data available";
    case ECANCELED: return "Operation canceled";
    case EOWNERDEAD: return "Owner died";
    case EILSEQ: return "Invalid or incomplete multibyte or wide character";
    default:
        snprintf(errno_buf, sizeof errno_buf, "Unknown error %d", e);
        return errno_buf;
    }
}

const char *persistent_strerror(int code)
{
    switch (code) {
    case 0: return "success";
    case PERSISTENT_E_NOT_SPACE: return "not a persistent_mem space";
    case PERSISTENT_E_TRUNCATED: return "space file is truncated";
    case PERSISTENT_E_VERSION: return "unsupported format version";
    case PERSISTENT_E_WORD_SIZE: return "space made with another word size";
    case PERSISTENT_E_BYTE_ORDER: return "space made with another byte order";
    case PERSISTENT_E_CHECKSUM: return "space header checksum mismatch";
    case PERSISTENT_E_SIZE: return "space sizes disagree with the file";
    case PERSISTENT_E_BUSY: return "space is open for writing elsewhere";
    case PERSISTENT_E_CORRUPT: return "space metadata is inconsistent";
    case PERSISTENT_E_DOUBLE_FREE: return "double free";
    case PERSISTENT_E_BAD_POINTER: return "pointer is not a live block";
    case PERSISTENT_E_FLUSH: return "flush method not available";
    case PERSISTENT_E_READONLY: return "space is read-only";
    case PERSISTENT_E_FILE_LOST: return "space file descriptor was closed behind the library's back";
    case PERSISTENT_E_ROOT_BLOCK: return "block is a root's (remove the root to free it)";
    case PERSISTENT_E_TX_BLOCK: return "block belongs to an open transaction";
    case PERSISTENT_E_TX_AUTO: return "space written during another thread's automatic transaction";
    default:
        if (code < 0 && code > -4096)
            return errno_text(-code);
        return "unknown error";
    }
}

int pm_code_to_errno(int code)
{
    if (code < 0 && code > -1000)
        return -code;
    switch (code) {
    case PERSISTENT_E_BUSY: return EBUSY;
    case PERSISTENT_E_READONLY: return EROFS;
    case PERSISTENT_E_FILE_LOST: return EBADF;
    case PERSISTENT_E_FLUSH: return ENOTSUP;
    case PERSISTENT_E_CORRUPT: return EIO;
    default: return EINVAL;
    }
}

void persistent_error_hook_set(persistent_error_fn *fn, void *arg)
{
    pm_store_release(&hook_arg, arg);
    pm_store_release(&hook_fn, fn);
}

void pm_misuse(struct pm_rt *rt, int code, const void *ptr, const char *what)
{
    char msg[160];
    snprintf(msg, sizeof msg, "persistent_mem: %s: %s %p",
             what, persistent_strerror(code), ptr);
    persistent_error_fn *fn = pm_load_acquire(&hook_fn);
    if (fn)
        fn((allocator_space_t *)(rt ? rt->base : NULL), code, ptr, msg,
           pm_load_acquire(&hook_arg));
    else
        fprintf(stderr, "%s\n", msg);
}

/* Test points (internal.h): a test installs a function that is called at
 * each PM_HOOK_* point; NULL in normal use, so each point costs one load. */
pm_hook_fn *_Atomic pm_test_hook;

/* persistent-mem: inspect a space from the command line.
 *
 * Every command but `recover` opens the file privately without recovery,
 * so it never writes it: safe on the file of a process that crashed, or of
 * one still running.  With --json, info, check, stats and roots print one
 * JSON object (docs/inspector.md has the schema), also when they fail.
 *
 * Exit status, as fsck's: 0 healthy (or done), 1 repaired (recover found
 * the space not closed cleanly and recovered it), 4 corrupt (a space whose
 * metadata is damaged), 8 not a space or not readable (no such file, not
 * a space, another format version or machine; or a check that a writer
 * kept from a verdict; or the output lost: standard output could not be
 * written, as to a full disk, a closed descriptor or, with SIGPIPE
 * ignored, a pipe nobody reads -- then one line on stderr says so, and 8
 * replaces what the command found, though what it did, it did: a copy is
 * there, a recovered space recovered), 16 usage.  Into a pipe whose
 * reader is gone, with SIGPIPE as usual, the tool dies of SIGPIPE, quietly
 * (as `persistent-mem dump FILE 0 | head` wants). */
#define _GNU_SOURCE             /* copy_file_range, FICLONE (Linux) */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/fs.h>
#endif

#include <persistent_mem.h>

enum { EX_HEALTHY = 0, EX_REPAIRED = 1, EX_CORRUPT = 4, EX_NOT_SPACE = 8, EX_USAGE = 16 };

static bool json;
static const char *command, *file;

static int usage(void)
{
    fprintf(stderr,
            "usage: persistent-mem COMMAND [--json] [ARGS]\n"
            "  info FILE              header: sizes, generations, mapping bases\n"
            "  check FILE             full read-only consistency check\n"
            "  stats FILE             live bytes per class, how full the classes'\n"
            "                         superblocks are, free page runs by length\n"
            "  roots FILE             every root: tag, offset, size\n"
            "  ptr FILE ADDR [GEN]    offset of a raw pointer stored while the\n"
            "                         space was mapped at an earlier base\n"
            "  dump FILE OFF [LEN]    hex dump of LEN bytes at offset OFF\n"
            "  recover FILE           open for writing (recovers), then close\n"
            "  copy FILE NEW          a consistent copy (also of a space a writer has\n"
            "                         open): reflinked where the file system can,\n"
            "                         else copied; recovered and checked\n"
            "  flush                  the cache flush method this CPU gets\n"
            "--json (info, check, stats, roots): one JSON object on stdout.\n"
            "Exit status: 0 healthy, 1 repaired, 4 corrupt, 8 not a space or not\n"
            "readable (or the output could not be written), 16 usage.\n");
    return EX_USAGE;
}

/* ---- output ---- */

/* errno of a write to stdout seen failing before the end (dump stops
 * there), for the message: the final fflush may then have nothing left to
 * fail on */
static int out_errno;

/* Whether stdout has failed so far; notes the cause. */
static bool out_failed(void)
{
    if (!ferror(stdout))
        return false;
    if (out_errno == 0)
        out_errno = errno ? errno : EIO;
    return true;
}

/* The exit status, once everything is written: a stdout that could not be
 * written (a full disk, a closed descriptor, a pipe nobody reads with
 * SIGPIPE ignored) is 8 and one line on stderr, whatever the command
 * found -- its verdict is lost.  A closed stdout nothing was written to
 * is no failure (fclose's EBADF with nothing pending). */
static int finish(int status)
{
    int e = 0;
    if (fflush(stdout) != 0)
        e = errno;
    else if (ferror(stdout))
        e = out_errno ? out_errno : EIO;
    if (fclose(stdout) != 0 && e == 0 && errno != EBADF)
        e = errno;
    if (e == 0)
        return status;
    fprintf(stderr, "persistent-mem: writing standard output: %s\n", strerror(e));
    return EX_NOT_SPACE;
}

/* ---- JSON ---- */

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF), 0 if none. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (n == 0 || c > 0xf4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) ||
        (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return n;
}

/* A JSON string.  A byte of the name that is not part of well-formed
 * UTF-8 (a file name is bytes) is written as a lone surrogate \udcXX, as
 * Python's surrogateescape decodes it: the output stays JSON, and
 * os.fsencode of what json.loads gives is the name. */
static void jstr(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    putchar('"');
    while (*s) {
        unsigned char c = *s;
        size_t n;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else if (c < 0x80)
            putchar(c);
        else if ((n = utf8_len(s)) != 0) {
            fwrite(s, 1, n, stdout);
            s += n;
            continue;
        } else
            printf("\\udc%02x", c);
        s++;
    }
    putchar('"');
}

/* The object's first members: schema, command, file. */
static void jhead(void)
{
    printf("{\"schema\": 1, \"command\": ");
    jstr(command);
    printf(", \"file\": ");
    jstr(file);
}

static void ju64(const char *name, uint64_t v)
{
    printf(", \"%s\": %" PRIu64, name, v);
}

static void jbool(const char *name, bool v)
{
    printf(", \"%s\": %s", name, v ? "true" : "false");
}

/* ---- opening ---- */

/* The exit status for an open that failed with code r. */
static int open_status(int r)
{
    switch (r) {
    case PERSISTENT_E_TRUNCATED:
    case PERSISTENT_E_CHECKSUM:
    case PERSISTENT_E_SIZE:
    case PERSISTENT_E_CORRUPT:
        return EX_CORRUPT;              /* a space, damaged */
    default:
        return EX_NOT_SPACE;
    }
}

static int fail(int status, const char *msg, int code)
{
    if (json) {
        jhead();
        printf(", \"status\": \"%s\", \"error\": ",
               status == EX_CORRUPT ? "corrupt" : "not-a-space");
        jstr(msg);
        printf(", \"code\": %d}\n", code);
    } else {
        fprintf(stderr, "%s\n", msg);
    }
    return status;
}

/* Opens privately without recovery; NULL with *status set on failure. */
static allocator_space_t *open_forensic(int *status)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER;
    allocator_space_t *s;
    int r = persistent_space_open(file, &o, &s);
    if (r < 0) {
        *status = fail(open_status(r), persistent_errormsg(), r);
        return NULL;
    }
    return s;
}

static const char *dur_name(uint32_t d)
{
    switch (d) {
    case PERSISTENT_DURABILITY_PROCESS: return "process-crash";
    case PERSISTENT_DURABILITY_PMEM: return "pmem";
    case PERSISTENT_DURABILITY_SYNC: return "sync-points";
    default: return "?";
    }
}

/* ---- commands ---- */

static int cmd_info(void)
{
    int st;
    allocator_space_t *s = open_forensic(&st);
    if (s == NULL)
        return st;
    struct persistent_info in;
    persistent_space_info(s, &in);
    char uuid[40], *u = uuid;
    for (int i = 0; i < 16; i++)
        u += sprintf(u, "%02x%s", in.uuid[i], i == 3 || i == 5 || i == 7 || i == 9 ? "-" : "");
    if (json) {
        jhead();
        printf(", \"format\": \"%u.%u\", \"uuid\": \"%s\"", in.format_major, in.format_minor,
               uuid);
        ju64("created_ns", in.create_time_ns);
        ju64("file_size", in.file_size);
        ju64("capacity", in.capacity);
        ju64("max_capacity", in.max_capacity);
        jbool("growable", in.growable);
        ju64("metadata", in.meta_size);
        ju64("page_size", in.page_size);
        ju64("superblock_size", in.superblock_size);
        jbool("clean", in.clean_at_open);
        printf(", \"durability\": \"%s\"", dur_name(in.recorded_durability));
        ju64("generation", in.generation);
        printf(", \"bases\": [");
        for (uint32_t i = 0; i < in.n_bases; i++)
            printf("%s{\"generation\": %" PRIu64 ", \"base\": %" PRIu64 ", \"size\": %" PRIu64
                   "}",
                   i ? ", " : "", in.bases[i].generation, in.bases[i].base, in.bases[i].size);
        printf("]}\n");
        persistent_space_close(s);
        return EX_HEALTHY;
    }
    time_t t = (time_t)(in.create_time_ns / 1000000000u);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
    printf("format        %u.%u\n", in.format_major, in.format_minor);
    printf("uuid          %s\n", uuid);
    printf("created       %s\n", when);
    printf("file size     %" PRIu64 "\n", in.file_size);
    printf("capacity      %" PRIu64 " (max %" PRIu64 "%s)\n", in.capacity,
           in.max_capacity, in.growable ? ", growable" : ", fixed");
    printf("metadata      %" PRIu64 "\n", in.meta_size);
    printf("page size     %u, superblocks of %u\n", in.page_size, in.superblock_size);
    printf("shutdown      %s\n", in.clean_at_open ? "clean" : "NOT clean (crashed or open)");
    printf("durability    %s (recorded)\n", dur_name(in.recorded_durability));
    printf("generation    %" PRIu64 "\n", in.generation);
    for (uint32_t i = 0; i < in.n_bases; i++)
        printf("  gen %-4" PRIu64 " mapped at 0x%" PRIx64 " (%" PRIu64 " bytes)\n",
               in.bases[i].generation, in.bases[i].base, in.bases[i].size);
    persistent_space_close(s);
    return EX_HEALTHY;
}

/* check: progress on a terminal */
static void check_progress(uint64_t done, uint64_t total, void *arg)
{
    int *last = arg, pct = total ? (int)(done * 100 / total) : 100;
    if (pct != *last) {
        fprintf(stderr, "\rcheck: %3d%%", pct);
        *last = pct;
    }
}

static int cmd_check(void)
{
    int st;
    allocator_space_t *s = open_forensic(&st);
    if (s == NULL)
        return st;
    struct persistent_check_report r;
    struct persistent_info in;
    persistent_space_info(s, &in);
    int last = -1, rc;
    if (in.file_size > (UINT64_C(1) << 30) && isatty(2)) {
        rc = persistent_check_progress(s, &r, check_progress, &last);
        fprintf(stderr, "\r");
    } else {
        rc = persistent_check(s, &r);
    }
    /* busy: a writer kept changing the space and no pass gave a verdict
     * (an operational error, as fsck says: 8) */
    st = rc == 0 ? EX_HEALTHY : rc == PERSISTENT_E_CORRUPT ? EX_CORRUPT : EX_NOT_SPACE;
    if (json) {
        jhead();
        printf(", \"status\": \"%s\"", st == EX_HEALTHY ? "healthy"
                                        : rc == PERSISTENT_E_BUSY ? "busy" : "corrupt");
        ju64("errors", r.n_errors);
        printf(", \"first_error\": ");
        if (r.n_errors)
            jstr(r.first_error);
        else
            printf("null");
        ju64("runs", r.runs);
        ju64("superblocks", r.superblocks);
        ju64("large_runs", r.large_runs);
        ju64("live_blocks", r.live_blocks);
        ju64("live_bytes", r.live_bytes);
        ju64("roots", r.roots);
        ju64("pending_remote_frees", r.pending_remote_frees);
        ju64("in_flight_lanes", r.in_flight_lanes);
        ju64("open_transactions", r.open_transactions);
        ju64("crash_leftovers", r.orphan_bits);
        printf("}\n");
    } else {
        printf("runs %" PRIu64 " (superblocks %" PRIu64 ", large %" PRIu64 ")\n", r.runs,
               r.superblocks, r.large_runs);
        printf("live blocks %" PRIu64 ", %" PRIu64 " bytes\n", r.live_blocks, r.live_bytes);
        printf("roots %" PRIu64 ", pending remote frees %" PRIu64
               ", publishing calls in flight %" PRIu64 ", open transactions %" PRIu64
               ", crash leftovers %" PRIu64 "\n",
               r.roots, r.pending_remote_frees, r.in_flight_lanes, r.open_transactions,
               r.orphan_bits);
        if (rc == PERSISTENT_E_BUSY)
            printf("%s\n", r.first_error);     /* "no verdict: ..." */
        else if (rc != 0)
            printf("%" PRIu64 " error(s); first: %s\n", r.n_errors, r.first_error);
        else
            printf("consistent\n");
    }
    persistent_space_close(s);
    return st;
}

/* A bar of width cols * part / whole, in '#'. */
static void bar(uint64_t part, uint64_t whole, int cols)
{
    int n = whole ? (int)((part * (uint64_t)cols + whole - 1) / whole) : 0;
    for (int i = 0; i < cols; i++)
        putchar(i < n ? '#' : ' ');
}

static int cmd_stats(void)
{
    int rc;
    allocator_space_t *s = open_forensic(&rc);
    if (s == NULL)
        return rc;
    struct persistent_stats st;
    struct persistent_frag fr;
    if (persistent_stats_get(s, &st) < 0 || persistent_frag_get(s, &fr) < 0) {
        rc = fail(EX_CORRUPT, persistent_errormsg(), PERSISTENT_E_CORRUPT);
        persistent_space_close(s);
        return rc;
    }
    if (json) {
        jhead();
        ju64("live_bytes", st.live_bytes);
        ju64("live_blocks", st.live_blocks);
        printf(", \"small\": {\"live_bytes\": %" PRIu64 ", \"superblocks\": %" PRIu64
               ", \"bytes\": %" PRIu64 ", \"empty_superblocks\": %" PRIu64 "}",
               st.small_live_bytes, st.superblocks, st.superblock_bytes,
               st.empty_superblocks);
        printf(", \"large\": {\"live_bytes\": %" PRIu64 ", \"runs\": %" PRIu64 "}",
               st.large_live_bytes, st.large_runs);
        ju64("free_bytes", st.free_bytes);
        ju64("capacity", st.capacity);
        ju64("file_size", st.file_size);
        ju64("page_size", fr.page_size);
        printf(", \"free_runs\": {\"count\": %" PRIu64 ", \"pages\": %" PRIu64
               ", \"largest\": %" PRIu64 ", \"by_length\": [",
               fr.n_free_runs, fr.free_pages, fr.largest_free_run);
        bool first = true;
        for (int b = 0; b < PERSISTENT_RUN_BUCKETS; b++) {
            if (fr.free_runs[b] == 0)
                continue;
            printf("%s{\"min_pages\": %" PRIu64 ", \"max_pages\": ", first ? "" : ", ",
                   UINT64_C(1) << b);
            if (b == PERSISTENT_RUN_BUCKETS - 1)
                printf("null");
            else
                printf("%" PRIu64, (UINT64_C(2) << b) - 1);
            printf(", \"count\": %" PRIu64 "}", fr.free_runs[b]);
            first = false;
        }
        printf("]}, \"classes\": [");
        first = true;
        for (uint32_t c = 0; c < fr.n_classes; c++) {
            if (fr.cls[c].superblocks == 0)
                continue;
            printf("%s{\"block_size\": %u, \"superblocks\": %u, \"live_blocks\": %" PRIu64
                   ", \"capacity_blocks\": %" PRIu64 ", \"fill\": %.4f}",
                   first ? "" : ", ", fr.cls[c].block_size, fr.cls[c].superblocks,
                   fr.cls[c].live_blocks, fr.cls[c].capacity_blocks,
                   fr.cls[c].capacity_blocks
                       ? (double)fr.cls[c].live_blocks / (double)fr.cls[c].capacity_blocks
                       : 0.0);
            first = false;
        }
        printf("]}\n");
        persistent_space_close(s);
        return EX_HEALTHY;
    }
    printf("live          %" PRIu64 " bytes in %" PRIu64 " blocks\n", st.live_bytes,
           st.live_blocks);
    printf("  small       %" PRIu64 " bytes in %" PRIu64 " superblocks (%" PRIu64 " bytes)\n",
           st.small_live_bytes, st.superblocks, st.superblock_bytes);
    printf("  large       %" PRIu64 " bytes in %" PRIu64 " runs\n", st.large_live_bytes,
           st.large_runs);
    printf("free pages    %" PRIu64 " bytes of %" PRIu64 "\n", st.free_bytes, st.capacity);
    printf("file          %" PRIu64 " bytes\n", st.file_size);
    printf("\nclasses: how full their superblocks are\n");
    printf("%10s %12s %12s %12s  %s\n", "class", "superblocks", "live blocks", "of", "fill");
    for (uint32_t c = 0; c < fr.n_classes; c++) {
        if (fr.cls[c].superblocks == 0)
            continue;
        printf("%10u %12u %12" PRIu64 " %12" PRIu64 "  |", fr.cls[c].block_size,
               fr.cls[c].superblocks, fr.cls[c].live_blocks, fr.cls[c].capacity_blocks);
        bar(fr.cls[c].live_blocks, fr.cls[c].capacity_blocks, 30);
        printf("| %5.1f%%\n", fr.cls[c].capacity_blocks
                                  ? 100.0 * (double)fr.cls[c].live_blocks /
                                        (double)fr.cls[c].capacity_blocks
                                  : 0.0);
    }
    printf("\nfree page runs (pages of %u bytes): %" PRIu64 " runs, %" PRIu64
           " pages, the largest %" PRIu64 "\n",
           fr.page_size, fr.n_free_runs, fr.free_pages, fr.largest_free_run);
    uint64_t most = 0;
    for (int b = 0; b < PERSISTENT_RUN_BUCKETS; b++)
        if (fr.free_runs[b] > most)
            most = fr.free_runs[b];
    for (int b = 0; b < PERSISTENT_RUN_BUCKETS; b++) {
        if (fr.free_runs[b] == 0)
            continue;
        char range[48];
        if (b == 0)
            snprintf(range, sizeof range, "1");
        else if (b == PERSISTENT_RUN_BUCKETS - 1)
            snprintf(range, sizeof range, "%" PRIu64 "-", UINT64_C(1) << b);
        else
            snprintf(range, sizeof range, "%" PRIu64 "-%" PRIu64, UINT64_C(1) << b,
                     (UINT64_C(2) << b) - 1);
        printf("%23s %10" PRIu64 "  |", range, fr.free_runs[b]);
        bar(fr.free_runs[b], most, 30);
        printf("|\n");
    }
    persistent_space_close(s);
    return EX_HEALTHY;
}

static int cmd_roots(void)
{
    int rc;
    allocator_space_t *s = open_forensic(&rc);
    if (s == NULL)
        return rc;
    struct persistent_root_iter it = {0};
    uint64_t tag;
    void *p;
    int n = 0;
    if (json) {
        jhead();
        printf(", \"roots\": [");
    } else {
        printf("%-20s %-14s %s\n", "tag", "offset", "bytes");
    }
    while (persistent_root_next(s, &it, &tag, &p) == 1) {
        uint64_t off = (uint64_t)ptr_to_persistent_offset(s, p);
        size_t size = persistent_usable_size(s, p);
        if (json)
            printf("%s{\"tag\": \"0x%" PRIx64 "\", \"offset\": %" PRIu64 ", \"size\": %zu}",
                   n ? ", " : "", tag, off, size);
        else
            printf("0x%-18" PRIx64 " 0x%-12" PRIx64 " %zu\n", tag, off, size);
        n++;
    }
    if (json)
        printf("]}\n");
    else
        printf("%d root(s)\n", n);
    persistent_space_close(s);
    return EX_HEALTHY;
}

/* A number argument, whole (decimal, 0x hex or 0 octal, as strtoull
 * reads them), or a usage error that names it: `dump FILE abc` dumped
 * offset 0, and `dump FILE 0 12x` 12 bytes. */
static bool number(const char *what, const char *arg, uint64_t *v)
{
    char *end = NULL;
    errno = 0;
    unsigned long long x = arg[0] == '-' || arg[0] == '+' ? 0 : strtoull(arg, &end, 0);
    if (end == NULL || end == arg || *end != '\0' || errno != 0) {
        fprintf(stderr, "persistent-mem: %s: not a number: %s\n", what, arg);
        return false;
    }
    *v = x;
    return true;
}

static int cmd_ptr(const char *addr, const char *gen)
{
    uint64_t a, g = 0;
    if (!number("ADDR", addr, &a) || (gen != NULL && !number("GEN", gen, &g)))
        return EX_USAGE;
    int rc;
    allocator_space_t *s = open_forensic(&rc);
    if (s == NULL)
        return rc;
    void *raw = (void *)(uintptr_t)a;
    void *now = gen ? persistent_ptr_from(s, raw, g) : persistent_ptr(s, raw);
    rc = EX_HEALTHY;
    if (now == NULL) {
        printf("%s is not inside any recorded mapping\n", addr);
        rc = EX_USAGE;
    } else {
        uint64_t off = ptr_to_persistent_offset(s, now);
        printf("offset 0x%" PRIx64 "", off);
        size_t u = persistent_usable_size(s, now);
        if (u)
            printf(" (a live block of %zu bytes)", u);
        printf("\n");
    }
    persistent_space_close(s);
    return rc;
}

static int cmd_dump(const char *offs, const char *lens)
{
    uint64_t off, len = 256;
    if (!number("OFF", offs, &off) || (lens != NULL && !number("LEN", lens, &len)))
        return EX_USAGE;
    int rc;
    allocator_space_t *s = open_forensic(&rc);
    if (s == NULL)
        return rc;
    struct persistent_info in;
    persistent_space_info(s, &in);
    if (off >= in.file_size || len > in.file_size - off) {
        fprintf(stderr, "range outside the file (%" PRIu64 " bytes)\n", in.file_size);
        persistent_space_close(s);
        return EX_USAGE;
    }
    persistent_space_close(s);
    /* the bytes by pread, not through a mapping: a read fault on a hole of
     * a tmpfs file allocates the page (and on a full one is a SIGBUS), and
     * the views fill no hole (README); pread reads a hole as zeros */
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "%s: %s\n", file, fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return EX_NOT_SPACE;
    }
    static unsigned char b[1 << 16];    /* a multiple of a line's 16 */
    uint64_t have = 0, at = 0;          /* b holds [at, at + have) */
    for (uint64_t i = 0; i < len; i += 16) {
        if (i >= at + have) {
            if (out_failed())
                break;                  /* no use dumping the rest */
            at = i;
            have = len - i < sizeof b ? len - i : sizeof b;
            ssize_t n = pread(fd, b, (size_t)have, (off_t)(off + i));
            if (n < 0) {
                fprintf(stderr, "%s: %s\n", file, strerror(errno));
                close(fd);
                return EX_NOT_SPACE;
            }
            memset(b + n, 0, (size_t)(have - (uint64_t)n));   /* cut short meanwhile */
        }
        const unsigned char *q = b + (i - at);
        printf("%08" PRIx64 "  ", off + i);
        for (uint64_t j = 0; j < 16; j++)
            i + j < len ? printf("%02x ", q[j]) : printf("   ");
        printf(" ");
        for (uint64_t j = 0; j < 16 && i + j < len; j++)
            putchar(q[j] >= 32 && q[j] < 127 ? q[j] : '.');
        putchar('\n');
    }
    close(fd);
    return EX_HEALTHY;
}

/* ---- copy ---- */

/* Copies [from, to) of in to the same place in out. */
static int copy_range(int in, int out, uint64_t from, uint64_t to, bool *cfr,
                      bool progress, uint64_t len)
{
    static char buf[1 << 20];
    for (uint64_t done = from; done < to;) {
        size_t chunk = to - done > (UINT64_C(64) << 20) ? (size_t)64 << 20 : (size_t)(to - done);
        ssize_t n = -1;
        if (*cfr) {
            off_t a = (off_t)done, b = (off_t)done;
            n = copy_file_range(in, &a, out, &b, chunk, 0);
            if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                          errno == EOPNOTSUPP)) {
                *cfr = false;
                continue;
            }
        } else {
            n = pread(in, buf, chunk < sizeof buf ? chunk : sizeof buf, (off_t)done);
            if (n > 0 && pwrite(out, buf, (size_t)n, (off_t)done) != n)
                n = -1;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? -EIO : -errno;
        done += (uint64_t)n;
        if (progress)
            fprintf(stderr, "\rcopy: %3d%%", (int)(done * 100 / len));
    }
    return 0;
}

/* Copies in to out (len bytes): a reflink where the file system can (an
 * instant of the file), else copy_file_range or read/write of the parts
 * that hold data, with progress on a terminal for a space over 1 GiB.  A
 * hole of the source (the run bitmaps' tail of a growable space: about 96
 * MiB for a maximum of 1 TiB) stays a hole in the copy (out is new and
 * empty; a helper's hunt: a copy of a 1.7 MB space took 98 MB).  The
 * method in *how. */
static int copy_bytes(int in, int out, uint64_t len, const char **how)
{
#if defined(FICLONE)
    if (ioctl(out, FICLONE, in) == 0) {
        *how = "reflink";
        return 0;
    }
#endif
    bool progress = len > (UINT64_C(1) << 30) && isatty(2);
    bool cfr = true;
    *how = "copy";
    for (uint64_t at = 0; at < len;) {
        off_t d = lseek(in, (off_t)at, SEEK_DATA), e;
        if (d < 0 && errno == ENXIO)
            break;                          /* holes to the end */
        if (d < 0) {
            d = (off_t)at;                  /* no SEEK_DATA here: all of it */
            e = (off_t)len;
        } else {
            e = lseek(in, d, SEEK_HOLE);
            if (e < 0 || (uint64_t)e > len)
                e = (off_t)len;
        }
        if ((uint64_t)d >= len)
            break;
        int r = copy_range(in, out, (uint64_t)d, (uint64_t)e, &cfr, progress, len);
        if (r < 0) {
            if (progress)
                fprintf(stderr, "\n");     /* the message on a line of its own */
            return r;
        }
        at = (uint64_t)e;
    }
    if (ftruncate(out, (off_t)len) != 0)
        return -errno;
    if (progress)
        fprintf(stderr, "\rcopy: done\n");
    return 0;
}

/* msg with every tmp in it said as dst, and without a leading "dst: "
 * (the caller names dst): the library's messages name the file it opened,
 * which for copy is the temporary the user never asked for. */
static void as_dst(char *out, size_t size, const char *msg, const char *tmp, const char *dst)
{
    size_t tl = strlen(tmp), n = 0;
    out[0] = '\0';
    for (const char *m = msg; *m && n + 1 < size;) {
        if (strncmp(m, tmp, tl) == 0) {
            n += (size_t)snprintf(out + n, size - n, "%s", dst);
            m += tl;
        } else {
            out[n++] = *m++;
            out[n] = '\0';
        }
    }
    if (n >= size)
        n = size - 1;
    size_t dl = strlen(dst);
    if (strncmp(out, dst, dl) == 0 && strncmp(out + dl, ": ", 2) == 0)
        memmove(out, out + dl + 2, n - dl - 2 + 1);
}

/* The copy's temporary gone: an unnamed one (anon) by closing out, a
 * named one by unlinking tmp. */
static void drop_tmp(int out, bool anon, const char *tmp)
{
    if (anon)
        close(out);
    else
        unlink(tmp);
}

/* A consistent copy of file at dst.  Without a writer the source is held
 * (a shared lock: a writer's open meanwhile gets PERSISTENT_E_BUSY) and
 * the copy is an instant of it.  With a writer at work, a reflink is an
 * instant too; a byte copy is not, so the copy is recovered and checked
 * like a crashed space's file, and taken again (five tries) if the writer
 * tore it.  Either way the copy is then opened for writing once (which
 * recovers it) and checked.  The bytes go to a temporary beside dst (an
 * unnamed file where the file system has them, else dst.PID.tmp), linked
 * to dst once checked; every message names dst, the path the user gave,
 * never the temporary. */
static int cmd_copy(const char *dst)
{
    /* without waiting: a FIFO's open would wait for a writer */
    int in = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (in < 0) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s: %s", file, strerror(errno));
        return fail(EX_NOT_SPACE, msg, -errno);
    }
    struct stat sb;
    int st_ok = fstat(in, &sb) == 0;
    if (!st_ok || !S_ISREG(sb.st_mode)) {
        char msg[600];
        int e = st_ok ? EINVAL : errno;
        snprintf(msg, sizeof msg, "%s: %s", file,
                 e == EINVAL ? "not a regular file" : strerror(e));
        close(in);
        return fail(EX_NOT_SPACE, msg, -e);
    }
    if (access(dst, F_OK) == 0) {
        fprintf(stderr, "%s exists\n", dst);
        close(in);
        return EX_USAGE;
    }
    bool live = flock(in, LOCK_SH | LOCK_NB) != 0;
    /* a copy past RLIMIT_FSIZE: EFBIG, a message and the temporary
     * deleted, not death by SIGXFSZ leaving the temporary behind */
    signal(SIGXFSZ, SIG_IGN);
    char tmp[4200], dir[4200];
    /* NEW's directory, for an unnamed temporary */
    snprintf(dir, sizeof dir, "%s", dst);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    bool proc = access("/proc/self/fd", X_OK) == 0;
    int status = EX_CORRUPT;
    char why[8400] = "", cause[4096];
    for (int attempt = 1; attempt <= 5; attempt++) {
        /* the bytes go to an unnamed file in NEW's directory where the
         * file system has them (O_TMPFILE: nothing is left behind however
         * the tool ends, SIGKILL and Ctrl-C included), opened by the
         * library through /proc and linked to NEW once checked; else to
         * NEW.PID.tmp, deleted on every failure the tool sees */
        int out = -1;
        bool anon = false;
        if (proc) {
            out = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, sb.st_mode & 0777);
            if (out >= 0) {
                anon = true;
                snprintf(tmp, sizeof tmp, "/proc/self/fd/%d", out);
            } else if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
                snprintf(why, sizeof why, "cannot create %s: %s", dst, strerror(errno));
                status = EX_USAGE;
                break;
            }
        }
        if (!anon) {
            snprintf(tmp, sizeof tmp, "%s.%ld.tmp", dst, (long)getpid());
            out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, sb.st_mode & 0777);
        }
        if (out < 0) {
            snprintf(why, sizeof why, "cannot create %s: %s", dst, strerror(errno));
            status = EX_USAGE;
            break;
        }
        /* the size now: a writer may have grown the space since the last
         * try (a copy of the old size is torn for good) */
        if (fstat(in, &sb) != 0) {
            snprintf(why, sizeof why, "%s: %s", file, strerror(errno));
            drop_tmp(out, anon, tmp);
            status = EX_NOT_SPACE;
            break;
        }
        const char *how = "copy";
        int r = copy_bytes(in, out, (uint64_t)sb.st_size, &how);
        if (r == 0 && fsync(out) != 0)
            r = -errno;
        if (!anon)
            close(out);                 /* an unnamed one lives while it is open */
        if (r < 0) {
            snprintf(why, sizeof why, "cannot copy %s to %s: %s", file, dst, strerror(-r));
            status = EX_NOT_SPACE;
            drop_tmp(anon ? out : -1, anon, tmp);
            break;
        }
        struct persistent_options o = {0};
        allocator_space_t *s;
        r = persistent_space_open(tmp, &o, &s);
        struct persistent_check_report rep;
        if (r == 0) {
            struct persistent_info inf;
            persistent_space_info(s, &inf);
            int c = persistent_check(s, &rep);
            if (persistent_space_close(s) != 0 && c == 0)
                c = -EIO;
            if (c == 0) {
                /* through /proc's link for an unnamed one (link(2) would
                 * link the symbolic link itself) */
                if (linkat(AT_FDCWD, tmp, AT_FDCWD, dst, AT_SYMLINK_FOLLOW) != 0) {
                    snprintf(why, sizeof why, "cannot create %s: %s", dst, strerror(errno));
                    drop_tmp(anon ? out : -1, anon, tmp);
                    status = EX_USAGE;
                    break;
                }
                drop_tmp(anon ? out : -1, anon, tmp);
                printf("copied by %s%s%s, %s\n", how, live ? " while a writer had it open" : "",
                       attempt > 1 ? " (taken again: a byte copy was torn)" : "",
                       inf.recovered ? "recovered and checked" : "checked");
                close(in);
                return EX_HEALTHY;
            }
            as_dst(cause, sizeof cause,
                   c == PERSISTENT_E_CORRUPT ? rep.first_error : persistent_strerror(c), tmp,
                   dst);
            snprintf(why, sizeof why, "cannot copy %s to %s: the copy fails its check: %s", file,
                     dst, cause);
        } else {
            as_dst(cause, sizeof cause, persistent_errormsg(), tmp, dst);
            snprintf(why, sizeof why, "cannot copy %s to %s: the copy does not open: %s", file,
                     dst, cause);
            if (open_status(r) == EX_NOT_SPACE) {
                drop_tmp(anon ? out : -1, anon, tmp);
                status = EX_NOT_SPACE;
                break;
            }
        }
        drop_tmp(anon ? out : -1, anon, tmp);
        if (!live || strcmp(how, "reflink") == 0)
            break;                      /* an instant of a damaged space */
    }
    close(in);
    return fail(status, why, status == EX_CORRUPT ? PERSISTENT_E_CORRUPT : -EIO);
}

static int cmd_recover(void)
{
    struct persistent_options o = {0};
    allocator_space_t *s;
    int r = persistent_space_open(file, &o, &s);
    if (r < 0)
        return fail(open_status(r), persistent_errormsg(), r);
    struct persistent_info in;
    persistent_space_info(s, &in);
    printf("%s\n", in.recovered ? "recovered" : "was clean, nothing to do");
    if (persistent_space_close(s) != 0)
        return fail(EX_NOT_SPACE, persistent_errormsg(), -EIO);
    return in.recovered ? EX_REPAIRED : EX_HEALTHY;
}

static int run(int argc, char **argv)
{
    /* --json anywhere after the command */
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && i > 1)
            json = true;
        else
            argv[n++] = argv[i];
    }
    if (n < 1)
        return usage();
    command = argv[0];
    if (strcmp(command, "flush") == 0 && n == 1 && !json) {
        printf("%s\n", persistent_flush_method());
        return EX_HEALTHY;
    }
    if (n < 2)
        return usage();
    file = argv[1];
    bool json_ok = strcmp(command, "info") == 0 || strcmp(command, "check") == 0 ||
                   strcmp(command, "stats") == 0 || strcmp(command, "roots") == 0;
    if (json && !json_ok)
        return usage();
    if (strcmp(command, "info") == 0 && n == 2)
        return cmd_info();
    if (strcmp(command, "check") == 0 && n == 2)
        return cmd_check();
    if (strcmp(command, "stats") == 0 && n == 2)
        return cmd_stats();
    if (strcmp(command, "roots") == 0 && n == 2)
        return cmd_roots();
    if (strcmp(command, "ptr") == 0 && (n == 3 || n == 4))
        return cmd_ptr(argv[2], n > 3 ? argv[3] : NULL);
    if (strcmp(command, "dump") == 0 && (n == 3 || n == 4))
        return cmd_dump(argv[2], n > 3 ? argv[3] : NULL);
    if (strcmp(command, "recover") == 0 && n == 2)
        return cmd_recover();
    if (strcmp(command, "copy") == 0 && n == 3)
        return cmd_copy(argv[2]);
    return usage();
}

int main(int argc, char **argv)
{
    return finish(run(argc, argv));
}

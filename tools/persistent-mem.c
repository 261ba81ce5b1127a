/* persistent-mem: inspect a space from the command line.
 *
 * Every command but `recover` opens the file privately without recovery,
 * so it never writes it: safe on the file of a process that crashed, or of
 * one still running. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <persistent_mem.h>

static int usage(void)
{
    fprintf(stderr,
            "usage: persistent-mem COMMAND [ARGS]\n"
            "  info FILE              header: sizes, generations, mapping bases\n"
            "  check FILE             full read-only consistency check\n"
            "  stats FILE             live bytes and superblocks per class\n"
            "  roots FILE             every root: tag, offset, size\n"
            "  ptr FILE ADDR [GEN]    offset of a raw pointer stored while the\n"
            "                         space was mapped at an earlier base\n"
            "  dump FILE OFF [LEN]    hex dump of LEN bytes at offset OFF\n"
            "  recover FILE           open for writing (recovers), then close\n"
            "  flush                  the cache flush method this CPU gets\n");
    return 2;
}

static allocator_space_t *open_forensic(const char *path)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER;
    allocator_space_t *s;
    int r = persistent_space_open(path, &o, &s);
    if (r < 0) {
        fprintf(stderr, "%s\n", persistent_errormsg());
        exit(1);
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

static int cmd_info(const char *path)
{
    allocator_space_t *s = open_forensic(path);
    struct persistent_info in;
    persistent_space_info(s, &in);
    time_t t = (time_t)(in.create_time_ns / 1000000000u);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
    printf("format        %u.%u\n", in.format_major, in.format_minor);
    printf("uuid          ");
    for (int i = 0; i < 16; i++)
        printf("%02x%s", in.uuid[i], i == 3 || i == 5 || i == 7 || i == 9 ? "-" : "");
    printf("\ncreated       %s\n", when);
    printf("file size     %" PRIu64 "\n", in.file_size);
    printf("capacity      %" PRIu64 " (max %" PRIu64 "%s)\n", in.capacity,
           in.max_capacity, in.growable ? ", growable" : ", fixed");
    printf("metadata      %" PRIu64 "\n", in.meta_size);
    printf("page size     %u, superblocks of %u\n", in.page_size, in.superblock_size);
    printf("shutdown      %s\n", in.clean_at_open ? "clean" : "NOT clean (crashed or open)");
    printf("durability    %s (recorded)\n", dur_name(in.durability));
    printf("generation    %" PRIu64 "\n", in.generation);
    for (uint32_t i = 0; i < in.n_bases; i++)
        printf("  gen %-4" PRIu64 " mapped at 0x%" PRIx64 " (%" PRIu64 " bytes)\n",
               in.bases[i].generation, in.bases[i].base, in.bases[i].size);
    persistent_space_close(s);
    return 0;
}

static int cmd_check(const char *path)
{
    allocator_space_t *s = open_forensic(path);
    struct persistent_check_report r;
    int rc = persistent_check(s, &r);
    printf("runs %" PRIu64 " (superblocks %" PRIu64 ", large %" PRIu64 ")\n", r.runs,
           r.superblocks, r.large_runs);
    printf("live blocks %" PRIu64 ", %" PRIu64 " bytes\n", r.live_blocks, r.live_bytes);
    printf("roots %" PRIu64 ", pending remote frees %" PRIu64
           ", publishing calls in flight %" PRIu64 ", crash leftovers %" PRIu64 "\n",
           r.roots, r.pending_remote_frees, r.in_flight_lanes, r.orphan_bits);
    if (rc != 0)
        printf("%" PRIu64 " error(s); first: %s\n", r.n_errors, r.first_error);
    else
        printf("consistent\n");
    persistent_space_close(s);
    return rc ? 1 : 0;
}

static int cmd_stats(const char *path)
{
    allocator_space_t *s = open_forensic(path);
    struct persistent_stats st;
    if (persistent_stats_get(s, &st) < 0) {
        fprintf(stderr, "%s\n", persistent_errormsg());
        return 1;
    }
    printf("live          %" PRIu64 " bytes in %" PRIu64 " blocks\n", st.live_bytes,
           st.live_blocks);
    printf("  small       %" PRIu64 " bytes in %" PRIu64 " superblocks (%" PRIu64 " bytes)\n",
           st.small_live_bytes, st.superblocks, st.superblock_bytes);
    printf("  large       %" PRIu64 " bytes in %" PRIu64 " runs\n", st.large_live_bytes,
           st.large_runs);
    printf("free pages    %" PRIu64 " bytes of %" PRIu64 "\n", st.free_bytes, st.capacity);
    printf("file          %" PRIu64 " bytes\n", st.file_size);
    printf("%10s %12s %12s\n", "class", "superblocks", "live blocks");
    for (uint32_t c = 0; c < st.n_classes; c++)
        if (st.cls[c].superblocks)
            printf("%10u %12u %12" PRIu64 "\n", st.cls[c].block_size,
                   st.cls[c].superblocks, st.cls[c].live_blocks);
    persistent_space_close(s);
    return 0;
}

static int cmd_roots(const char *path)
{
    allocator_space_t *s = open_forensic(path);
    struct persistent_root_iter it = {0};
    uint64_t tag;
    void *p;
    int n = 0;
    printf("%-20s %-14s %s\n", "tag", "offset", "bytes");
    while (persistent_root_next(s, &it, &tag, &p) == 1) {
        printf("0x%-18" PRIx64 " 0x%-12" PRIx64 " %zu\n", tag,
               (uint64_t)ptr_to_persistent_offset(s, p), persistent_usable_size(s, p));
        n++;
    }
    printf("%d root(s)\n", n);
    persistent_space_close(s);
    return 0;
}

static int cmd_ptr(const char *path, const char *addr, const char *gen)
{
    allocator_space_t *s = open_forensic(path);
    void *raw = (void *)(uintptr_t)strtoull(addr, NULL, 0);
    void *now = gen ? persistent_ptr_from(s, raw, strtoull(gen, NULL, 0))
                    : persistent_ptr(s, raw);
    int rc = 0;
    if (now == NULL) {
        printf("%s is not inside any recorded mapping\n", addr);
        rc = 1;
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

static int cmd_dump(const char *path, const char *offs, const char *lens)
{
    allocator_space_t *s = open_forensic(path);
    struct persistent_info in;
    persistent_space_info(s, &in);
    uint64_t off = strtoull(offs, NULL, 0), len = lens ? strtoull(lens, NULL, 0) : 256;
    if (off >= in.file_size || len > in.file_size - off) {
        fprintf(stderr, "range outside the file (%" PRIu64 " bytes)\n", in.file_size);
        return 1;
    }
    const unsigned char *b = (const unsigned char *)s + off;
    for (uint64_t i = 0; i < len; i += 16) {
        printf("%08" PRIx64 "  ", off + i);
        for (uint64_t j = 0; j < 16; j++)
            i + j < len ? printf("%02x ", b[i + j]) : printf("   ");
        printf(" ");
        for (uint64_t j = 0; j < 16 && i + j < len; j++)
            putchar(b[i + j] >= 32 && b[i + j] < 127 ? b[i + j] : '.');
        putchar('\n');
    }
    persistent_space_close(s);
    return 0;
}

static int cmd_recover(const char *path)
{
    struct persistent_options o = {0};
    allocator_space_t *s;
    if (persistent_space_open(path, &o, &s) < 0) {
        fprintf(stderr, "%s\n", persistent_errormsg());
        return 1;
    }
    struct persistent_info in;
    persistent_space_info(s, &in);
    printf("%s\n", in.recovered ? "recovered" : "was clean, nothing to do");
    return persistent_space_close(s) ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const char *c = argv[1];
    if (strcmp(c, "flush") == 0) {
        printf("%s\n", persistent_flush_method());
        return 0;
    }
    if (argc < 3)
        return usage();
    if (strcmp(c, "info") == 0)
        return cmd_info(argv[2]);
    if (strcmp(c, "check") == 0)
        return cmd_check(argv[2]);
    if (strcmp(c, "stats") == 0)
        return cmd_stats(argv[2]);
    if (strcmp(c, "roots") == 0)
        return cmd_roots(argv[2]);
    if (strcmp(c, "ptr") == 0 && argc >= 4)
        return cmd_ptr(argv[2], argv[3], argc > 4 ? argv[4] : NULL);
    if (strcmp(c, "dump") == 0 && argc >= 4)
        return cmd_dump(argv[2], argv[3], argc > 4 ? argv[4] : NULL);
    if (strcmp(c, "recover") == 0)
        return cmd_recover(argv[2]);
    return usage();
}

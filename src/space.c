/* Space lifecycle: plan, create, validate, map, grow, close; the header's
 * double-buffered state; the registry of open spaces; persistent_ptr.
 *
 * Invariants
 *   - A file is validated (read with pread, never mapped) before anything
 *     else happens; a file that fails is never written.
 *   - A new space is built under a temporary name and link(2)ed into place,
 *     so a space file either does not exist or is complete, and an existing
 *     file is never overwritten.
 *   - The mapping reserves the address range of the maximum size up front,
 *     so growth extends it in place and no pointer moves.
 *   - pm_state is only written by open, close and growth, under grow_lock
 *     or before the space is visible to other threads.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define PM_MAX_OPEN 256

/* A slot keeps, beside the runtime, what the lock-free scans of every
 * slot compare (persistent_space_of, pm_instance_open): such a scan never
 * reads another space's runtime, which a close of that space frees under
 * it (a review: persistent_space_of read a freed pm_rt's base).  Written
 * before base is published (release), cleared with it. */
static struct {
    pm_atomic_uptr base;
    struct pm_rt *_Atomic rt;
    pm_atomic_u64 size;                 /* rt->reserve_size */
    pm_atomic_u64 instance;             /* rt->instance */
} registry[PM_MAX_OPEN];
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
/* Slots taken, open spaces and opens under way together, under
 * registry_lock: an open takes its place first (registry_reserve), so
 * that one past the limit is refused before it writes a byte. */
static int registry_used;
static _Thread_local int registry_mine;   /* of those, this thread's opens */
static pm_atomic_u32 exit_pins;         /* thread exits handing back (pm_rt_pin) */
/* [span_lo, span_hi): the lowest and highest address of any open space's
 * reservation (0, 0 when none is open), so persistent_space_of answers a
 * pointer outside every space with one comparison.  Written under
 * registry_lock, widened before a space is published and narrowed after
 * one is removed; a reader that mixes an old and a new bound still covers
 * every space that is open across both writes. */
static pm_atomic_uptr span_lo, span_hi;
static pm_atomic_u64 instance_counter;
/* Starts at 1: a thread's cached space (pm_tls) with epoch 0, a new
 * thread's or one forgotten (thread.c), matches no call, whatever space it
 * names, NULL included. */
pm_atomic_u64 pm_close_epoch = 1;

struct pm_rt *pm_rt_of(const allocator_space_t *space)
{
    if (space == NULL)
        return NULL;
    if (pm_tls.space == space && pm_tls.epoch == pm_load_relaxed(&pm_close_epoch))
        return pm_tls.rt;
    for (int i = 0; i < PM_MAX_OPEN; i++)
        if (pm_load_acquire(&registry[i].base) == (uintptr_t)space)
            return pm_load_acquire(&registry[i].rt);
    return NULL;
}

struct space_hit {
    uintptr_t lo, hi;
    allocator_space_t *space;
    uint64_t epoch;
};
static _Thread_local struct space_hit last_hit;

allocator_space_t *persistent_space_of(const void *ptr)
{
    uintptr_t p = (uintptr_t)ptr;
    uint64_t epoch = pm_load_acquire(&pm_close_epoch);
    if (p - last_hit.lo < last_hit.hi - last_hit.lo && last_hit.epoch == epoch)
        return last_hit.space;
    uintptr_t lo = pm_load_acquire(&span_lo), hi = pm_load_acquire(&span_hi);
    if (p - lo >= hi - lo)
        return NULL;
    for (int i = 0; i < PM_MAX_OPEN; i++) {
        uintptr_t b = pm_load_acquire(&registry[i].base);
        if (b == 0)
            continue;
        pm_hook(PM_HOOK_REGISTRY_SCAN);
        uint64_t size = pm_load_acquire(&registry[i].size);
        /* the slot still the space's whose base was read: a size of
         * another space published there since is stored (release) after
         * this one's base was cleared */
        if (pm_load_acquire(&registry[i].base) != b)
            continue;
        if (p - b < size) {
            last_hit = (struct space_hit){b, b + size, (allocator_space_t *)b, epoch};
            return (allocator_space_t *)b;
        }
    }
    return NULL;
}

static uint64_t round_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

static uint64_t pow2_floor(uint64_t x)
{
    return x ? UINT64_C(1) << (63 - pm_clz64(x)) : 0;
}

static uint64_t clamp64(uint64_t x, uint64_t lo, uint64_t hi)
{
    return x < lo ? lo : x > hi ? hi : x;
}

static uint64_t bswap64(uint64_t x)
{
    return __builtin_bswap64(x);
}

/* ------------------------------------------------------------------------ */
/* Format planning                                                            */

/* Fills the fixed header and the first state for a new space with room for
 * size bytes of pages, growable up to max_size.  Page size, superblock size,
 * root and lane counts scale with the maximum so that a tiny space costs a
 * page of metadata and a big one gets 4 KiB pages and 64 KiB superblocks. */
static int plan(uint64_t size, uint64_t max_size, struct pm_fixed *f,
                struct pm_state *s)
{
    if (size == 0)
        return pm_err(-EINVAL, "cannot create a space of 0 bytes");
    uint64_t maxcap = max_size > size ? max_size : size;
    if (maxcap > PM_MAX_CAPACITY)
        return pm_err(-EFBIG, "space of %llu bytes is above the 1 TiB limit",
                      (unsigned long long)maxcap);

    uint64_t page = clamp64(pow2_floor(maxcap / 32), UINT64_C(1) << PM_MIN_PAGE_SHIFT,
                            UINT64_C(1) << PM_MAX_PAGE_SHIFT);
    uint32_t shift = pm_ctz64(page);
    uint64_t unit = PM_DATA_ALIGN / page;   /* pages per 4 KiB */
    uint64_t n_pages = round_up((size + page - 1) / page, unit);
    uint64_t max_pages = round_up((maxcap + page - 1) / page, unit);

    memset(f, 0, sizeof *f);
    memcpy(f->magic, PM_MAGIC, 8);
    f->byte_order = PM_BYTE_ORDER_MARK;
    f->major = PM_FORMAT_MAJOR;
    f->minor = PM_FORMAT_MINOR;
    f->word_size = (uint8_t)sizeof(void *);
    f->page_shift = (uint8_t)shift;
    f->header_size = PM_HEADER_SIZE;
    /* room for 64 superblocks, so every class can have one in a small
     * space (G5b) */
    f->sb_size = (uint32_t)clamp64(pow2_floor(maxcap / 64), page, 65536);
    f->flags = max_pages > n_pages ? PM_FLAG_GROWABLE : 0;
    f->roots_cap = (uint32_t)clamp64(pow2_floor(maxcap / 16384), 16, 1024);
    f->n_lanes = (uint32_t)clamp64(maxcap / 262144, 8, 256);
    f->max_pages = max_pages;
    f->bits_size = round_up((max_pages + 63) / 64 * 8, PM_META_ALIGN);

    uint64_t off = PM_HEADER_SIZE;
    f->start_bits_off = off;
    off += f->bits_size;
    f->end_bits_off = off;
    off += f->bits_size;
    f->kind_bits_off = off;
    off += f->bits_size;
    f->roots_off = off;
    off += (uint64_t)f->roots_cap * sizeof(struct pm_root_slot);
    off = round_up(off, PM_META_ALIGN);
    f->lanes_off = off;
    off += (uint64_t)f->n_lanes * sizeof(struct pm_lane);
    f->data_off = round_up(off, PM_DATA_ALIGN);
    f->meta_size = f->data_off;
    f->create_time_ns = os_time_ns();
    os_random(f->uuid, sizeof f->uuid);
    f->uuid[6] = (uint8_t)((f->uuid[6] & 0x0f) | 0x40);   /* version 4 */
    f->uuid[8] = (uint8_t)((f->uuid[8] & 0x3f) | 0x80);   /* variant 1 */
    f->checksum = pm_fixed_checksum(f);

    memset(s, 0, sizeof *s);
    s->seq = 1;
    s->n_pages = n_pages;
    s->file_size = f->data_off + (n_pages << shift);
    s->clean = 1;
    s->durability = PM_DUR_PROCESS;
    s->checksum = pm_state_checksum(s);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Validation (G5): a clear code per defect, and nothing is ever written.    */

static bool area_ok(uint64_t off, uint64_t len, uint64_t lo, uint64_t hi)
{
    return off >= lo && len <= hi && off <= hi - len;
}

static bool reserved_set(const struct pm_fixed *f)
{
    uint8_t any = 0;
    for (size_t i = 0; i < sizeof f->reserved2; i++)
        any |= f->reserved2[i];
    return f->reserved0 != 0 || f->reserved1 != 0 || any != 0;
}

static int check_fixed(const char *path, const struct pm_fixed *f)
{
    uint64_t page = UINT64_C(1) << (f->page_shift & 63);
    /* a flag is a feature the file depends on: one this library does not
     * know is refused; reserved fields are zero in this minor version and
     * any before it (a newer minor may use them) */
    if (f->flags & ~PM_FLAG_GROWABLE)
        return pm_err(PERSISTENT_E_VERSION, "%s: header flags %#x unknown to this "
                      "library (format %u.%u)", path, f->flags & ~PM_FLAG_GROWABLE,
                      PM_FORMAT_MAJOR, PM_FORMAT_MINOR);
    if (f->minor <= PM_FORMAT_MINOR && reserved_set(f))
        return pm_err(PERSISTENT_E_VERSION, "%s: reserved header fields are set, which "
                      "format %u.%u never does", path, f->major, f->minor);
    if (f->header_size != PM_HEADER_SIZE ||
        f->page_shift < PM_MIN_PAGE_SHIFT || f->page_shift > PM_MAX_PAGE_SHIFT)
        return pm_err(PERSISTENT_E_SIZE, "%s: header/page size %u/%u is invalid",
                      path, f->header_size, 1u << (f->page_shift & 31));
    /* whole 4 KiB units, as every size the file may take (growth stops at
     * the maximum) */
    if (f->max_pages == 0 || f->max_pages > (PM_MAX_CAPACITY >> f->page_shift) ||
        (f->max_pages << f->page_shift) % PM_DATA_ALIGN != 0)
        return pm_err(PERSISTENT_E_SIZE, "%s: maximum of %llu pages is invalid",
                      path, (unsigned long long)f->max_pages);
    if (f->data_off % PM_DATA_ALIGN != 0 || f->meta_size != f->data_off ||
        f->bits_size < (f->max_pages + 63) / 64 * 8)
        return pm_err(PERSISTENT_E_SIZE, "%s: metadata size %llu is inconsistent",
                      path, (unsigned long long)f->data_off);
    if (f->roots_cap == 0 || f->roots_cap > (1u << 20) ||
        f->n_lanes == 0 || f->n_lanes > 4096 ||
        f->sb_size < page || f->sb_size > (1u << 20) ||
        (f->sb_size & (f->sb_size - 1)) != 0)
        return pm_err(PERSISTENT_E_SIZE, "%s: root/lane/superblock sizes are invalid",
                      path);
    uint64_t lo = PM_HEADER_SIZE, hi = f->data_off;
    uint64_t roots_len = (uint64_t)f->roots_cap * sizeof(struct pm_root_slot);
    uint64_t lanes_len = (uint64_t)f->n_lanes * sizeof(struct pm_lane);
    if (!area_ok(f->start_bits_off, f->bits_size, lo, hi) ||
        !area_ok(f->end_bits_off, f->bits_size, f->start_bits_off + f->bits_size, hi) ||
        !area_ok(f->kind_bits_off, f->bits_size, f->end_bits_off + f->bits_size, hi) ||
        !area_ok(f->roots_off, roots_len, f->kind_bits_off + f->bits_size, hi) ||
        !area_ok(f->lanes_off, lanes_len, f->roots_off + roots_len, hi) ||
        f->lanes_off % PM_META_ALIGN != 0 || f->start_bits_off % 8 != 0 ||
        f->end_bits_off % 8 != 0 || f->kind_bits_off % 8 != 0 ||
        f->roots_off % 16 != 0)
        return pm_err(PERSISTENT_E_SIZE, "%s: metadata areas overlap or overflow",
                      path);
    /* and laid out exactly as a create lays them out (plan), with no gap:
     * the metadata is no bigger than it must be, and every size computed
     * from these fields fits in 64 bits (found by the fuzzer: a data offset
     * near 2^64 made the file size wrap) */
    if (f->bits_size != round_up((f->max_pages + 63) / 64 * 8, PM_META_ALIGN) ||
        f->start_bits_off != PM_HEADER_SIZE ||
        f->end_bits_off != f->start_bits_off + f->bits_size ||
        f->kind_bits_off != f->end_bits_off + f->bits_size ||
        f->roots_off != f->kind_bits_off + f->bits_size ||
        f->lanes_off != round_up(f->roots_off + roots_len, PM_META_ALIGN) ||
        f->data_off != round_up(f->lanes_off + lanes_len, PM_DATA_ALIGN))
        return pm_err(PERSISTENT_E_SIZE, "%s: metadata areas are not where their "
                      "sizes put them", path);
    return 0;
}

static int check_state(const char *path, const struct pm_fixed *f,
                       const struct pm_state *s)
{
    uint64_t bytes = s->n_pages << f->page_shift;
    if (s->n_pages == 0 || s->n_pages > f->max_pages ||
        s->file_size != f->data_off + bytes || bytes % PM_DATA_ALIGN != 0 ||
        (!(f->flags & PM_FLAG_GROWABLE) && s->n_pages != f->max_pages) ||
        s->n_bases > PM_N_BASES)
        return pm_err(PERSISTENT_E_SIZE,
                      "%s: header says %llu pages in %llu bytes, which disagree",
                      path, (unsigned long long)s->n_pages,
                      (unsigned long long)s->file_size);
    return 0;
}

/* Whether the header in buf is a space's but for its magic, all zero:
 * what a create killed before it wrote the magic leaves. */
static bool interrupted_create(const unsigned char *buf, size_t n)
{
    static const unsigned char zero[8];
    if (n < PM_HEADER_SIZE || memcmp(buf, zero, 8) != 0)
        return false;
    struct pm_fixed f;
    memcpy(&f, buf, sizeof f);
    memcpy(f.magic, PM_MAGIC, sizeof f.magic);
    struct pm_state st[2];
    memcpy(st, buf + offsetof(struct pm_header, state), sizeof st);
    /* the second slot as a create leaves it, zero: the first writer's open
     * writes it (a space whose writer was killed before its close, its
     * magic then damaged, was taken for one and its magic written back,
     * G8: a helper's hunt) */
    static const struct pm_state none;
    return pm_fixed_checksum(&f) == f.checksum && st[0].seq == 1 &&
           pm_state_checksum(&st[0]) == st[0].checksum && memcmp(&st[1], &none, sizeof none) == 0;
}

/* Whether the file's heap is empty as a create leaves it: no run starts
 * in its pages (the start bitmap's words read as zero, or lie past the
 * end of a file killed before its blocks were allocated). */
static bool heap_empty_on_file(int fd, const struct pm_fixed *f, uint64_t n_pages)
{
    uint64_t buf[512];
    uint64_t words = (n_pages + 63) / 64;
    for (uint64_t w = 0; w < words;) {
        uint64_t k = words - w < 512 ? words - w : 512;
        ssize_t got = os_pread_upto(fd, buf, k * 8, f->start_bits_off + w * 8);
        if (got < 0)
            return false;
        for (uint64_t i = 0; i < (uint64_t)got / 8; i++)
            if (buf[i] != 0)
                return false;
        if ((uint64_t)got < k * 8)
            return true;                /* the end of the file */
        w += k;
    }
    return true;
}

/* Reads and validates the header of the file open on fd. */
static int validate(const char *path, int fd, struct pm_fixed *f,
                    struct pm_state *st, int *slot)
{
    uint64_t fsize;
    int r = os_file_size(fd, &fsize);
    if (r < 0)
        return pm_err(r, "%s: %s", path,
                      r == -EINVAL ? "not a regular file" : persistent_strerror(r));
    unsigned char buf[PM_HEADER_SIZE];
    memset(buf, 0, sizeof buf);
    size_t n = fsize < PM_HEADER_SIZE ? (size_t)fsize : PM_HEADER_SIZE;
    if (n < 8)
        return pm_err(PERSISTENT_E_NOT_SPACE,
                      "%s: not a persistent_mem space (%llu bytes%s)", path,
                      (unsigned long long)fsize,
                      fsize == 0 ? "; an open that may create makes it one" : "");
    pm_hook(PM_HOOK_OPEN_SIZED);
    r = os_pread_all(fd, buf, n, 0);
    if (r < 0)
        return pm_err(r, "%s: read: %s", path, persistent_strerror(r));
    /* the size again, now that the header is read: a writer that grew the
     * space meanwhile extended the file before it committed the pages the
     * header says, so this size covers them (the first one may not) */
    r = os_file_size(fd, &fsize);
    if (r < 0)
        return pm_err(r, "%s: %s", path, persistent_strerror(r));
    if (interrupted_create(buf, n))
        return pm_err(PERSISTENT_E_NOT_SPACE,
                      "%s: an interrupted create, not a space yet (an open "
                      "that may create finishes it)", path);
    if (memcmp(buf, PM_MAGIC, 8) != 0)
        return pm_err(PERSISTENT_E_NOT_SPACE,
                      "%s: not a persistent_mem space (bad magic)", path);
    if (fsize < PM_HEADER_SIZE)
        return pm_err(PERSISTENT_E_TRUNCATED,
                      "%s: truncated to %llu bytes, shorter than its header",
                      path, (unsigned long long)fsize);

    /* The magic, the byte-order mark, the word size and the version sit at
     * fixed offsets in every format version, so they are judged before the
     * checksum, whose position a future major version may move. */
    memcpy(f, buf, sizeof *f);
    if (f->byte_order == bswap64(PM_BYTE_ORDER_MARK))
        return pm_err(PERSISTENT_E_BYTE_ORDER,
                      "%s: made on a machine of the other byte order", path);
    if (f->byte_order != PM_BYTE_ORDER_MARK)
        return pm_err(PERSISTENT_E_CHECKSUM,
                      "%s: header damaged (byte-order mark %016llx)", path,
                      (unsigned long long)f->byte_order);
    if (f->word_size != sizeof(void *))
        return pm_err(PERSISTENT_E_WORD_SIZE,
                      "%s: made by a %u-bit build, this is %u-bit", path,
                      8u * f->word_size, 8u * (unsigned)sizeof(void *));
    if (f->major != PM_FORMAT_MAJOR)
        return pm_err(PERSISTENT_E_VERSION,
                      "%s: format version %u.%u, this library reads %u.x", path,
                      f->major, f->minor, PM_FORMAT_MAJOR);
    if (pm_fixed_checksum(f) != f->checksum)
        return pm_err(PERSISTENT_E_CHECKSUM,
                      "%s: header checksum mismatch (stored %08x, computed %08x)",
                      path, f->checksum, pm_fixed_checksum(f));

    int best = -1;
    struct pm_state s[2];
    memcpy(s, buf + offsetof(struct pm_header, state), sizeof s);
    for (int i = 0; i < 2; i++)
        if (s[i].seq != 0 && pm_state_checksum(&s[i]) == s[i].checksum &&
            (best < 0 || s[i].seq > s[best].seq))
            best = i;
    if (best < 0)
        return pm_err(PERSISTENT_E_CHECKSUM,
                      "%s: both header state slots fail their checksum", path);

    r = check_fixed(path, f);
    if (r == 0)
        r = check_state(path, f, &s[best]);
    if (r < 0)
        return r;
    /* The committed page count is the live word (growth moves it alone);
     * the state slot has it as of the last open or close, never more. */
    uint64_t n_live;
    memcpy(&n_live, buf + offsetof(struct pm_header, live) +
                        offsetof(struct pm_live, n_pages), sizeof n_live);
    if (n_live < s[best].n_pages || n_live > f->max_pages ||
        (n_live << f->page_shift) % PM_DATA_ALIGN != 0 ||
        (!(f->flags & PM_FLAG_GROWABLE) && n_live != f->max_pages))
        return pm_err(PERSISTENT_E_SIZE,
                      "%s: header says %llu pages now and %llu at the last "
                      "open, which disagree", path, (unsigned long long)n_live,
                      (unsigned long long)s[best].n_pages);
    s[best].n_pages = n_live;
    s[best].file_size = f->data_off + (n_live << f->page_shift);
    if (fsize < s[best].file_size)
        return pm_err(PERSISTENT_E_TRUNCATED,
                      "%s: truncated: %llu bytes, header says %llu", path,
                      (unsigned long long)fsize,
                      (unsigned long long)s[best].file_size);
    /* A larger file is what a crash in the middle of growth leaves. */
    uint64_t max_file = f->data_off + (f->max_pages << f->page_shift);
    if (fsize > s[best].file_size &&
        (!(f->flags & PM_FLAG_GROWABLE) || fsize > max_file))
        return pm_err(PERSISTENT_E_SIZE,
                      "%s: %llu bytes, header says %llu", path,
                      (unsigned long long)fsize,
                      (unsigned long long)s[best].file_size);
    *st = s[best];
    *slot = best;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Header state                                                               */

/* Header updates are made durable in every mode but PROCESS: with cache-line
 * write-back on persistent memory, else with msync of the header page. */
static void persist_header(struct pm_rt *rt, const void *addr, size_t len)
{
    if (rt->flush != NULL) {            /* PMEM (cache lines or msync), tests */
        rt->flush->flush(addr, len);
        rt->flush->drain();
    } else if (rt->durability == PM_DUR_SYNC) {
        (void)os_msync(rt->base, PM_HEADER_SIZE);
    }
}

/* Open and close only (one thread, nobody else using the space). */
int pm_state_commit(struct pm_rt *rt, const struct pm_state *next)
{
    struct pm_state s = *next;
    s.seq = rt->st.seq + 1;
    s.checksum = pm_state_checksum(&s);
    int slot = 1 - rt->cur_slot;
    memcpy(&rt->hdr->state[slot], &s, sizeof s);
    persist_header(rt, &rt->hdr->state[slot], sizeof s);
    rt->st = s;
    rt->cur_slot = slot;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Create                                                                     */
/*
 * A new space is built where nobody can see it half made: in an unnamed
 * file (O_TMPFILE) that is given its name only once it is complete, so a
 * process killed at any point leaves nothing behind; where the file system
 * cannot do that, under a temporary name (PATH.<12 hex digits>.tmp) linked
 * into place at the end, and the next create in that directory removes
 * what a killed creator left.  Either way a space file either does not
 * exist or is complete, and an existing file is never overwritten.
 *
 * An existing empty file (what mkstemp gives, SQLite's convention) is made
 * a space in place, under the writer's flock, with the magic written last:
 * killed midway, it holds a whole space but for the magic -- an
 * interrupted create, which the next open allowed to create finishes and
 * any other open refuses as not (yet) a space.  Any other file that is not
 * a space is left untouched. */

/* The unit in which the run bitmaps' words are backed: a store through
 * the mapping dirties a whole memory page, and the file system reserves
 * every block of it at the first write fault (64 KiB pages over 4 KiB
 * blocks, or 4 KiB pages over 1 KiB ones), so the page or the file
 * system's block, whichever is larger. */
uint64_t pm_back_unit(int fd)
{
    uint64_t g = os_page_size(), b = os_block_size(fd);
    if (b > g && b <= (UINT64_C(1) << 20) && (b & (b - 1)) == 0)
        g = b;
    return g;
}

/* Backs the file of a space with n committed pages: every byte of it but
 * the run bitmaps' words of the pages past n, which a growable space sizes
 * for its maximum (100 MB of them for 1 TiB) and which are holes until
 * growth backs them, before it reads them (grow_step).  Holes read as
 * zeros, which is what those words hold.  holes_only: only where the file
 * has a hole (after punches); else all of it (a create, or after a lazy
 * writer, whose holes may be anywhere and where SEEK_HOLE may find none).
 * Each range is rounded out to pm_back_unit, never past the file's end;
 * ranges that then meet are backed as one, and the last first: it gives
 * the file its size at once, as one call did before. */
int pm_back_file(int fd, const struct pm_fixed *f, uint64_t n_pages, bool holes_only)
{
    uint64_t used = (n_pages + 63) / 64 * 8, g = pm_back_unit(fd);
    uint64_t size = f->data_off + (n_pages << f->page_shift);
    uint64_t r[4][2] = {
        {0, f->start_bits_off + used},
        {f->end_bits_off, f->end_bits_off + used},
        {f->kind_bits_off, f->kind_bits_off + used},
        {f->roots_off, size},
    };
    int k = 0;                          /* ranges after merging */
    for (int i = 0; i < 4; i++) {
        uint64_t a = r[i][0] / g * g, b = (r[i][1] + g - 1) / g * g;
        b = b < size ? b : size;
        if (i > 0 && a <= r[k][1]) {
            r[k][1] = b > r[k][1] ? b : r[k][1];
        } else {
            k = i > 0 ? k + 1 : 0;
            r[k][0] = a;
            r[k][1] = b;
        }
    }
    for (int i = k; i >= 0; i--) {
        int e = holes_only ? os_fill_holes(fd, r[i][0], r[i][1])
                           : os_allocate(fd, r[i][0], r[i][1] - r[i][0]);
        if (e < 0)
            return e;
    }
    return 0;
}

/* Whether [off, off+len) lies wholly where pm_back_file leaves holes in a
 * file of n pages: in the run bitmaps' words of the pages past n. */
bool pm_in_bits_tail(const struct pm_fixed *f, uint64_t n_pages, uint64_t off, uint64_t len)
{
    uint64_t used = (n_pages + 63) / 64 * 8;
    const uint64_t lo[3] = {f->start_bits_off + used, f->end_bits_off + used,
                            f->kind_bits_off + used};
    const uint64_t hi[3] = {f->end_bits_off, f->kind_bits_off, f->roots_off};
    for (int i = 0; i < 3; i++)
        if (off >= lo[i] && len <= hi[i] - lo[i] && off - lo[i] <= hi[i] - lo[i] - len)
            return true;
    return false;
}

/* What a writer's open leaves in no_holes once the file is backed. */
uint64_t pm_backed_word(const struct pm_fixed *f)
{
    return (f->flags & PM_FLAG_GROWABLE) ? PM_HOLES_TAIL : PM_HOLES_NONE;
}

/* Test support: forces the named temporary file (no O_TMPFILE). */
bool pm_test_no_tmpfile;

/* The blocks of a new space (its header written): lazy, the size only
 * (the last page), the rest backed when written. */
static int back_new(const char *path, int fd, const struct pm_fixed *f,
                    const struct pm_state *s, bool lazy)
{
    int r = lazy ? os_allocate(fd, s->file_size - PM_DATA_ALIGN, PM_DATA_ALIGN)
                 : pm_back_file(fd, f, s->n_pages, false);
    if (r < 0)
        return pm_err(r, "%s: cannot allocate %llu bytes: %s", path,
                      (unsigned long long)s->file_size, persistent_strerror(r));
    return 0;
}

/* Writes a new space (fixed header f, state s) into the empty file fd. */
static int write_space(const char *path, int fd, const struct pm_fixed *f,
                       const struct pm_state *s, bool magic_last, bool lazy)
{
    struct pm_header h;
    memset(&h, 0, sizeof h);
    h.fixed = *f;
    h.state[0] = *s;
    pm_store_relaxed(&h.live.n_pages, s->n_pages);
    /* allocated next, unless lazily */
    pm_store_relaxed(&h.live.no_holes, lazy ? PM_HOLES_LAZY : pm_backed_word(f));
    if (magic_last)
        memset(h.fixed.magic, 0, sizeof h.fixed.magic);
    /* the header first: an empty file made a space in place and killed
     * while its blocks are allocated (several calls) is an interrupted
     * create, which finish_interrupted_create completes, and not a file
     * of zeros that no open would take for a space again */
    int r = os_pwrite_all(fd, &h, sizeof h, 0);
    /* on the disk before the blocks, whose size a journal may commit
     * first: else a power failure can leave the zeros without it */
    if (r == 0 && magic_last)
        r = os_fdatasync(fd);
    if (r < 0)
        return pm_err(r, "%s: cannot write header: %s", path, persistent_strerror(r));
    pm_hook(PM_HOOK_CREATE_HEADER);
    r = back_new(path, fd, f, s, lazy);
    if (r < 0)
        return r;
    /* the header and the blocks reach the disk before the name (or the
     * magic) does */
    r = os_fsync(fd);
    pm_hook(PM_HOOK_CREATE_WRITTEN);
    if (r == 0 && magic_last) {
        r = os_pwrite_all(fd, PM_MAGIC, sizeof h.fixed.magic, 0);
        if (r == 0)
            r = os_fsync(fd);
    }
    if (r < 0)
        return pm_err(r, "%s: cannot write header: %s", path, persistent_strerror(r));
    return 0;
}

static int space_create(const char *path, const struct persistent_options *o,
                        int *fdp)
{
    struct pm_fixed f;
    struct pm_state s;
    int r = plan(o->size, o->max_size, &f, &s);
    if (r < 0)
        return r;
    unsigned mode = o->mode ? o->mode : 0644;

    int fd;
    if (!pm_test_no_tmpfile && os_create_unnamed(path, mode, &fd) == 0) {
        /* locked before it has a name: no writer can open it half made */
        r = os_lock_writer(fd);
        if (r == 0)
            r = write_space(path, fd, &f, &s, false, (o->flags & PERSISTENT_OPEN_LAZY) != 0);
        if (r == 0) {
            r = os_link_unnamed(fd, path);
            if (r < 0 && r != -EEXIST)
                pm_err(r, "%s: cannot link: %s", path, persistent_strerror(r));
        }
        if (r < 0) {
            os_close(fd);
            return r;
        }
        (void)os_fsync_dir(path);
        *fdp = fd;
        return 0;
    }

    os_clean_stale_temps(path);
    char tmp[4096];
    r = os_create_temp(path, mode, &fd, tmp, sizeof tmp);
    if (r < 0)
        return pm_err(r, "%s: cannot create: %s", path, persistent_strerror(r));
    r = os_lock_writer(fd);
    if (r == 0)
        r = write_space(path, fd, &f, &s, false, (o->flags & PERSISTENT_OPEN_LAZY) != 0);
    if (r == 0) {
        r = os_link(tmp, path);
        if (r < 0 && r != -EEXIST)
            pm_err(r, "%s: cannot link: %s", path, persistent_strerror(r));
    }
    os_unlink(tmp);
    if (r < 0) {
        os_close(fd);
        return r;
    }
    (void)os_fsync_dir(path);
    *fdp = fd;
    return 0;
}

/* The writer has fd locked.  An empty file becomes a space (1 when the
 * file is not empty: it is validated as it is). */
static int space_init_empty(const char *path, int fd, const struct persistent_options *o)
{
    uint64_t size;
    int r = os_file_size(fd, &size);
    if (r < 0 || size != 0)
        return 1;
    struct pm_fixed f;
    struct pm_state s;
    r = plan(o->size, o->max_size, &f, &s);
    if (r == 0)
        r = write_space(path, fd, &f, &s, true, (o->flags & PERSISTENT_OPEN_LAZY) != 0);
    if (r < 0)
        (void)os_truncate(fd, 0);           /* empty again, as it was */
    return r;
}

/* The writer has fd locked and may create: finishes an interrupted create
 * (writes the magic); anything else is left to validation. */
static int finish_interrupted_create(const char *path, int fd)
{
    unsigned char buf[PM_HEADER_SIZE];
    uint64_t size;
    if (os_file_size(fd, &size) < 0 || size < PM_HEADER_SIZE ||
        os_pread_all(fd, buf, sizeof buf, 0) < 0 || !interrupted_create(buf, sizeof buf))
        return 0;
    /* its blocks, as the create would have allocated them (it may have
     * been killed before): only for a header that is a valid one's */
    struct pm_fixed f;
    struct pm_state st;
    uint64_t holes;
    memcpy(&f, buf, sizeof f);
    memcpy(f.magic, PM_MAGIC, sizeof f.magic);
    memcpy(&st, buf + offsetof(struct pm_header, state), sizeof st);
    memcpy(&holes, buf + offsetof(struct pm_header, live.no_holes), sizeof holes);
    if (check_fixed(path, &f) < 0 || check_state(path, &f, &st) < 0 ||
        !heap_empty_on_file(fd, &f, st.n_pages))
        return 0;                       /* left to validation, which refuses it */
    int r = back_new(path, fd, &f, &st, holes == PM_HOLES_LAZY);
    if (r == 0)
        r = os_fsync(fd);               /* the blocks before the magic */
    if (r == 0)
        r = os_pwrite_all(fd, PM_MAGIC, 8, 0);
    if (r == 0)
        r = os_fsync(fd);
    if (r < 0)
        return pm_err(r, "%s: cannot finish an interrupted create: %s", path,
                      persistent_strerror(r));
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Open                                                                       */

static uint32_t resolve_durability(uint32_t asked, bool created, bool dax,
                                   const struct pm_state *st)
{
    if (asked != PERSISTENT_DURABILITY_DEFAULT)
        return asked;
    if (!created && st->durability >= PM_DUR_PROCESS && st->durability <= PM_DUR_SYNC)
        return st->durability;
    return dax ? PM_DUR_PMEM : PM_DUR_PROCESS;
}

/* In a child after fork() the parent's spaces are gone: the child shares
 * the parent's writer lock and MAP_SHARED pages, so using them would race
 * with the parent.  The child's calls on them fail as on any unknown space;
 * opening the file again reports it busy while the parent has it.
 *
 * A flock belongs to the open description, and the child's copy of a
 * writer's descriptor and its mapping of the file (a mapping holds the
 * description too) kept the parent's writer lock after the parent closed
 * the space: nobody, the parent included, could open it for writing again
 * while the child lived, and what the child wrote reached the parent's
 * file.  So the child maps each writer's file again copy-on-write from a
 * description of its own (its pages read as before; what it writes there
 * is its own) and closes its copy of the descriptor -- only where the
 * number still names the space's file: the program may have closed it
 * and opened something else under it, and then the child gets a copy of
 * the pages instead (os_release_after_fork).  A private open that owns its
 * heap (own_copy: it recovered, allocates) always gets the copy: its truth
 * is the private pages, which a mapping of the file again would throw
 * away, and the child's copy of them holds no description of the file;
 * its descriptor (the shared lock) is closed apart.  A read-only view and
 * a private view without recovery hold no lock and stay as they are: the
 * kernel gives the child their pages, shared read-only or copy-on-write.
 * fstat, lseek, open and close are
 * async-signal-safe, as a child of a threaded program needs; mmap is a
 * system call with no lock in the C library.  A space another thread is
 * opening or closing is not in the registry: the fork waits for those
 * (fork_opening, below). */
static void forget_after_fork(void)
{
    for (int i = 0; i < PM_MAX_OPEN; i++) {
        struct pm_rt *rt = pm_load_relaxed(&registry[i].rt);
        if (rt != NULL && (rt->mode == PM_MODE_WRITER || rt->view_locked)) {
            /* a descriptor the program closed (and maybe reused): the
             * mapping still holds the description, and goes unreadable */
            bool ours = pm_load_relaxed(&rt->fd_lost) == 0 &&
                        os_fd_verify(rt->fd, &rt->fid) == 0;
            /* the pages the space has: never more than the file holds
             * (a view's count follows the file's size, pm_follow; the
             * header's may be a damaged file's) */
            uint64_t used = rt->data_off + (pm_load_relaxed(&rt->n_pages) << rt->page_shift);
            /* the child's pages are its own to read, free blocks too (an
             * ASan build poisons them; the copy below reads them all) */
            pm_vg_unmap(rt);
            if (rt->own_copy) {
                /* a private heap: its truth is the mapping's pages, not
                 * the file, so they are copied, never mapped again from
                 * the file (which would throw the parent's private
                 * writes away); the descriptor, with the shared lock,
                 * is let go all the same */
                os_release_after_fork(-1, rt->base, rt->reserve_size, used);
                if (ours)
                    os_close(rt->fd);
            } else {
                os_release_after_fork(ours ? rt->fd : -1, rt->base, rt->reserve_size, used);
            }
        }
        pm_store_relaxed(&registry[i].base, (uintptr_t)0);
        pm_store_relaxed(&registry[i].rt, (struct pm_rt *)NULL);
        pm_store_relaxed(&registry[i].instance, (uint64_t)0);
    }
    /* no other thread's open is under way (the fork waited for them): the
     * places taken are those of this thread's, a hook's fork inside one */
    registry_used = registry_mine;
    pm_store_relaxed(&span_lo, (uintptr_t)0);
    pm_store_relaxed(&span_hi, (uintptr_t)0);
    pm_fetch_add_acq_rel(&pm_close_epoch, 1);
    pm_store_relaxed(&exit_pins, 0u);   /* pinners of the parent's threads */
    pm_tx_forget_after_fork();
    pm_thread_forget_after_fork();
    os_faults_after_fork();
    pthread_mutex_init(&registry_lock, NULL);
}

/* Under registry_lock: the bounds over the open spaces, plus extra when
 * not NULL (a space about to be published). */
static void span_update(const struct pm_rt *extra)
{
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < PM_MAX_OPEN + 1; i++) {
        const struct pm_rt *rt = i < PM_MAX_OPEN ? pm_load_relaxed(&registry[i].rt) : extra;
        if (rt == NULL)
            continue;
        uintptr_t b = (uintptr_t)rt->base;
        if (b < lo)
            lo = b;
        if (b + rt->reserve_size > hi)
            hi = b + rt->reserve_size;
    }
    if (hi == 0)
        lo = 0;
    pm_store_release(&span_lo, lo);
    pm_store_release(&span_hi, hi);
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

/* Opens and closes count themselves in fork_opening, and a fork's
 * prepare handler raises fork_forking and waits for the count to drain:
 * between its writer lock and its registry entry an open (and a close,
 * between the two the other way round) has a description the fork
 * handler cannot see, and a child forked there by another thread kept
 * that space's lock for its life (a review: 1 to 30 iterations of a
 * loop).  So a fork waits for the opens and closes under way, a recovery
 * or a writer's two-second wait for a judge included, and new ones wait
 * for the fork.  Both sides store, then load, sequentially consistent
 * (Dekker): an open either sees the fork and steps back, or is seen.  A
 * fork from inside an open or a close on the same thread (a hook) does
 * not wait for its own.  Atomics, not a pthread lock: the child cannot
 * release a lock its parent's thread took (glibc's rwlock keeps the
 * writer's thread id).  Never on the allocation path. */
static pm_atomic_u32 fork_opening, fork_forking;
static _Thread_local int fork_shield_depth;

static void fork_shield_enter(void)
{
    if (fork_shield_depth++ > 0)
        return;
    for (;;) {
        while (pm_load_seq_cst(&fork_forking) != 0)
            os_sleep_us(100);
        pm_fetch_add_seq_cst(&fork_opening, 1u);
        if (pm_load_seq_cst(&fork_forking) == 0)
            return;
        pm_fetch_sub_seq_cst(&fork_opening, 1u);   /* a fork came first */
    }
}

static void fork_shield_leave(void)
{
    if (--fork_shield_depth == 0)
        pm_fetch_sub_seq_cst(&fork_opening, 1u);
}

static void fork_prepare(void)
{
    uint32_t zero = 0;
    while (!pm_cas_strong_seq_cst(&fork_forking, &zero, 1u)) {
        zero = 0;                               /* another thread forks */
        os_sleep_us(100);
    }
    uint32_t own = fork_shield_depth > 0 ? 1u : 0u;
    while (pm_load_seq_cst(&fork_opening) > own)
        os_sleep_us(100);
}

static void fork_parent(void)
{
    pm_store_seq_cst(&fork_forking, 0u);
}

static void fork_child(void)
{
    forget_after_fork();
    pm_store_seq_cst(&fork_opening, fork_shield_depth > 0 ? 1u : 0u);
    pm_store_seq_cst(&fork_forking, 0u);
}

static void fork_init(void)
{
    (void)pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Registered when the library is loaded, not at the first open: a child's
 * fork handlers run in the order they were registered, and one that a
 * program (or a library loaded after this one, which runs its
 * constructors later) registers for the spaces it keeps must find them
 * mapped as forget_after_fork leaves them, not have its own mapping of
 * them replaced afterwards.  (A GNU attribute, in gcc and clang.) */
__attribute__((constructor)) static void fork_init_at_load(void)
{
    pthread_once(&fork_once, fork_init);
}

/* An open's place among the PM_MAX_OPEN, taken before it looks at the
 * file: one past the limit is refused (-EMFILE) before anything is
 * created or written (G8).  Given back by registry_unreserve when the
 * open fails, or kept by registry_add. */
static int registry_reserve(void)
{
    pthread_once(&fork_once, fork_init);
    pthread_mutex_lock(&registry_lock);
    bool full = registry_used >= PM_MAX_OPEN;
    if (!full) {
        registry_used++;
        registry_mine++;
    }
    pthread_mutex_unlock(&registry_lock);
    if (full)
        return pm_err(-EMFILE, "more than %d spaces open in this process: the "
                      "file is left as it was", PM_MAX_OPEN);
    return 0;
}

static void registry_unreserve(void)
{
    pthread_mutex_lock(&registry_lock);
    registry_used--;
    registry_mine--;
    pthread_mutex_unlock(&registry_lock);
}

/* The space published in the place its open reserved: a slot is free
 * (registry_used counts every slot in use and every reservation). */
static int registry_add(struct pm_rt *rt)
{
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < PM_MAX_OPEN; i++) {
        if (pm_load_relaxed(&registry[i].rt) == NULL) {
            span_update(rt);
            pm_store_release(&registry[i].size, rt->reserve_size);
            pm_store_release(&registry[i].instance, rt->instance);
            pm_store_release(&registry[i].rt, rt);
            pm_store_release(&registry[i].base, (uintptr_t)rt->base);
            registry_mine--;            /* the place the open's for good */
            pthread_mutex_unlock(&registry_lock);
            return 0;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return pm_err(-EMFILE, "more than %d spaces open in this process", PM_MAX_OPEN);
}

static struct pm_rt *registry_remove(const allocator_space_t *space)
{
    struct pm_rt *rt = NULL;
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < PM_MAX_OPEN; i++) {
        if (pm_load_relaxed(&registry[i].base) == (uintptr_t)space) {
            rt = pm_load_relaxed(&registry[i].rt);
            pm_store_release(&registry[i].base, (uintptr_t)0);
            pm_store_seq_cst(&registry[i].rt, (struct pm_rt *)NULL);   /* pm_rt_pin */
            pm_store_release(&registry[i].instance, (uint64_t)0);
            span_update(NULL);
            registry_used--;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return rt;
}

/* Whether the open with this instance number is still open: the slots'
 * copies compared, never a runtime (one a close frees meanwhile). */
bool pm_instance_open(uint64_t instance)
{
    for (int i = 0; i < PM_MAX_OPEN; i++) {
        if (pm_load_acquire(&registry[i].base) == 0)
            continue;
        pm_hook(PM_HOOK_REGISTRY_SCAN);
        if (pm_load_acquire(&registry[i].instance) == instance)
            return true;
    }
    return false;
}

/* Thread exit: keeps rt alive while the exiting thread hands back its
 * record, with no lock (G1).  The pin is a process-wide count, raised
 * before the lookup; close unregisters the space, then waits for the count
 * to drain (pm_rt_pins_drain).  Both sides are sequentially consistent (a
 * store then a load each), so either the close sees the pin and waits, or
 * the pinner's lookup no longer finds the space and never touches it. */
struct pm_rt *pm_rt_pin(uint64_t instance)
{
    pm_fetch_add_seq_cst(&exit_pins, 1u);
    struct pm_rt *rt = NULL;
    for (int i = 0; i < PM_MAX_OPEN && rt == NULL; i++) {
        struct pm_rt *r = pm_load_seq_cst(&registry[i].rt);
        if (r != NULL && r->instance == instance && pm_load_acquire(&r->closing) == 0)
            rt = r;
    }
    if (rt == NULL)
        pm_fetch_sub_seq_cst(&exit_pins, 1u);
    return rt;
}

void pm_rt_unpin(struct pm_rt *rt)
{
    (void)rt;
    pm_fetch_sub_seq_cst(&exit_pins, 1u);
}

/* Close, after the space is unregistered: no exiting thread still hands
 * back a record of it (one pinned before the unregistering may). */
void pm_rt_pins_drain(void)
{
    while (pm_load_seq_cst(&exit_pins) != 0)
        sched_yield();
}

static void rt_unmap_free(struct pm_rt *rt)
{
    if (rt->base) {
        pm_crash_detach(rt->base);
        pm_vg_unmap(rt);        /* ASan: no poison left where a mapping goes */
        os_unmap(rt->base, rt->reserve_size);
    }
    /* a descriptor that names another file by now is the program's */
    if (pm_load_acquire(&rt->fd_lost) == 0 && os_fd_verify(rt->fd, &rt->fid) == 0)
        os_close(rt->fd);
    free(rt);
}

/* 0 when rt->fd still names the space's file; else the space stops using
 * the descriptor for good and the error (PERSISTENT_E_FILE_LOST) is
 * reported once through the error hook: the program closed the descriptor
 * behind the library's back, and whatever file has its number now is
 * never touched.  The writer's flock went with the descriptor. */
int pm_fd_check(struct pm_rt *rt, const char *what)
{
    if (PM_UNLIKELY(pm_load_acquire(&rt->fd_lost) != 0))
        return pm_err(PERSISTENT_E_FILE_LOST, "%s: the space's file descriptor "
                      "was closed behind its back; the file is no longer used", what);
    if (os_fd_verify(rt->fd, &rt->fid) == 0)
        return 0;
    uint32_t zero = 0;
    if (pm_cas_strong_acq_rel(&rt->fd_lost, &zero, 1u))
        pm_misuse(rt, PERSISTENT_E_FILE_LOST, rt->base,
                  "space file descriptor closed or replaced by the program");
    return pm_err(PERSISTENT_E_FILE_LOST, "%s: the space's file descriptor (%d) "
                  "was closed or now names another file; that file is left "
                  "alone and the space stops growing and syncing", what, rt->fd);
}

/* Whether rt->fd still names the space's file, as pm_fd_check asks but
 * with nothing reported or marked: for reads that have another way. */
bool pm_fd_ours(struct pm_rt *rt)
{
    return rt->fd >= 0 && pm_load_acquire(&rt->fd_lost) == 0 &&
           os_fd_verify(rt->fd, &rt->fid) == 0;
}

/* A descriptor of the space's own file with a file position of its own
 * (to look for holes, or to lock without touching the space's), or -1:
 * a descriptor the program closed or made another file's (checked before
 * it is opened again: a FIFO put under its number would block the open),
 * or none to be had (no /proc, no descriptor left).  The caller closes
 * it. */
bool pm_test_no_fd_again;   /* test support: as if /proc were not there */

int pm_fd_again(struct pm_rt *rt)
{
    if (pm_test_no_fd_again || !pm_fd_ours(rt))
        return -1;
    int fd = os_reopen_private(rt->fd);
    if (fd < 0)
        return -1;
    struct os_file_id same = rt->fid;
    same.mark = UINT64_MAX;             /* its own file position */
    if (os_fd_verify(fd, &same) == 0)
        return fd;
    os_close(fd);
    return -1;
}

/* A private open that takes the heap as its own (it recovers, allocates):
 * the file's holes under zeroed memory of its own.  A store into a hole of
 * a private file mapping needs the file's page first, on tmpfs as a page
 * charged to the file system, which when full answers SIGBUS (a helper's
 * hunt: a private open's malloc carved a superblock in a hole a huge free
 * had punched, on a full tmpfs, and died); a hole reads as zeros, and so
 * does the memory.  Such an open holds the shared lock (no writer opens
 * while it is open; with a writer live it opens without recovery and
 * does not come here), so no writer fills a hole under it.  Each private
 * mapping of it (pm_space_map: the open's, and again after a rollback
 * trial) does this.  Without a second descriptor or SEEK_HOLE the mapping
 * stays as it is. */
static void private_holes_zero(struct pm_rt *rt, uint64_t file_size)
{
    int pfd = pm_fd_again(rt);
    if (pfd < 0)
        return;
    uint64_t page = os_page_size();
    /* each hole a mapping of its own: a file of many (lazy, punched) must
     * not use up the process's mappings (vm.max_map_count, 65530 by
     * default), so the first 1024 of them; the rest stay the file's */
    int left = 1024;
    for (uint64_t at = 0; at < file_size && left > 0; left--) {
        uint64_t h = os_next_hole(pfd, at, file_size);
        if (h >= file_size)
            break;
        uint64_t d = os_next_data(pfd, h, file_size);
        if (d <= h)
            break;                      /* SEEK_DATA unknown: stop */
        uint64_t a = (h + page - 1) / page * page, b = d / page * page;
        if (b > a && os_map_zero(rt->base + a, b - a) < 0)
            break;                      /* as it was: a hole reads as zeros */
        at = d;
    }
    os_close(pfd);
}

/* Maps the file over the whole reservation in mode (PM_MODE_PRIVATE: copy
 * on write, never reaching the file), replacing what was mapped there; a
 * private mapping that cannot have it all (strict overcommit) maps what
 * the file holds.  rt->map_pages says how far it reaches. */
int pm_space_map(struct pm_rt *rt, uint32_t mode, bool sync)
{
    rt->map_pages = rt->max_pages;
    int r = os_map_file(rt->base, rt->reserve_size, rt->fd, 0, mode, sync);
    if (r < 0 && mode == PM_MODE_PRIVATE) {
        rt->map_pages = rt->st.n_pages;
        r = os_map_file(rt->base, rt->st.file_size, rt->fd, 0, mode, sync);
    }
    if (r == 0 && mode == PM_MODE_PRIVATE && rt->own_copy)
        private_holes_zero(rt, rt->st.file_size);
    return r;
}

static int open_fd(const char *path, int fd, uint32_t mode, uint32_t oflags,
                   uint32_t durability, bool created, allocator_space_t **out)
{
    struct pm_fixed f;
    struct pm_state st;
    int slot = 0;
    int r = validate(path, fd, &f, &st, &slot);
    if (r < 0) {
        os_close(fd);
        return r;
    }
    struct pm_rt *rt = calloc(1, sizeof *rt);
    if (rt == NULL) {
        os_close(fd);
        return pm_err(-ENOMEM, "out of memory");
    }
    fd = os_fd_move_high(fd);
    rt->fd = fd;
    r = os_fd_mark(fd, &rt->fid);
    if (r < 0) {
        os_close(fd);
        free(rt);
        return pm_err(r, "%s: fstat: %s", path, persistent_strerror(r));
    }
    rt->mode = mode;
    rt->open_flags = oflags;
    rt->fixed = f;
    rt->instance = pm_fetch_add_relaxed(&instance_counter, 1) + 1;
    rt->page_shift = f.page_shift;
    rt->page_size = UINT64_C(1) << f.page_shift;
    rt->data_off = f.data_off;
    rt->max_pages = f.max_pages;
    rt->max_bytes = f.max_pages << f.page_shift;
    rt->reserve_size = round_up(f.data_off + rt->max_bytes, 4096);
    rt->st = st;
    rt->cur_slot = slot;
    rt->clean_at_open = st.clean != 0;

    bool dax = mode == PM_MODE_WRITER && os_probe_dax(fd);
    rt->durability = mode == PM_MODE_WRITER
                         ? resolve_durability(durability, created, dax, &st)
                         : PM_DUR_PROCESS;
    rt->map_mode = mode;
    rt->map_sync = dax && rt->durability == PM_DUR_PMEM;
    int crash = pm_crash_mode();
    if (crash >= PM_CRASH_POWER && mode == PM_MODE_WRITER) {
        rt->map_mode = PM_MODE_PRIVATE;     /* only flushed lines reach the file */
        rt->map_sync = false;
    }

    bool at_pref;
    uint64_t preferred = st.n_bases ? st.bases[0].base : 0;
    char *base = os_reserve(preferred, rt->reserve_size, PM_BASE_ALIGN, &at_pref);
    if (base == NULL) {
        uint64_t size = rt->reserve_size;
        rt_unmap_free(rt);
        return pm_err(-ENOMEM, "%s: cannot reserve %llu bytes of address space",
                      path, (unsigned long long)size);
    }
    rt->base = base;
    /* The whole reservation maps the file, also past its end: growth then
     * only extends the file, and readers see the new pages with no mmap of
     * their own (os_map_file).  A private mapping that cannot have it all
     * (strict overcommit) maps what the file holds and does not follow. */
    rt->own_copy = mode == PM_MODE_PRIVATE && !(oflags & PERSISTENT_OPEN_NO_RECOVER);
    r = pm_space_map(rt, rt->map_mode, rt->map_sync);
    if (r < 0) {
        rt_unmap_free(rt);
        return pm_err(r, "%s: mmap: %s", path, persistent_strerror(r));
    }
    rt->hdr = (struct pm_header *)base;
    rt->data = base + f.data_off;
    rt->start_bits = (pm_atomic_u64 *)(base + f.start_bits_off);
    rt->end_bits = (pm_atomic_u64 *)(base + f.end_bits_off);
    rt->kind_bits = (pm_atomic_u64 *)(base + f.kind_bits_off);
    pm_store_relaxed(&rt->n_pages, st.n_pages);

    /* PMEM durability writes back cache lines where they are the media (DAX)
     * or when PERSISTENT_MEM_FLUSH forces an instruction, else msyncs */
    if (rt->durability == PM_DUR_PMEM)
        rt->flush = dax || pm_flush_forced() ? pm_flush_ops_get() : &pm_ops_msync;
    if (crash != PM_CRASH_NONE && mode == PM_MODE_WRITER) {
        rt->flush = pm_crash_wrap(rt->flush);
        rt->flush_sim = crash >= PM_CRASH_POWER;
        if (crash >= PM_CRASH_POWER)
            pm_crash_attach(base, st.file_size, fd);
    }
    rt->can_alloc = mode == PM_MODE_WRITER ||
                    (mode == PM_MODE_PRIVATE && !(oflags & PERSISTENT_OPEN_NO_RECOVER));
    /* a private open that recovers has its own heap by now: a writer's
     * later pages would not fit it */
    rt->follows = mode != PM_MODE_WRITER && !rt->can_alloc &&
                  rt->map_pages == rt->max_pages;

    /* huge frees give their blocks back to the file system (pages.c) */
    rt->can_punch = mode == PM_MODE_WRITER && rt->map_mode == PM_MODE_WRITER &&
                    rt->page_shift == 12;
    /* everything that can refuse the file runs before the first write */
    r = pm_engine_prepare(rt);
    if (r < 0) {
        pm_engine_close(rt);
        rt_unmap_free(rt);
        return r;
    }
    if (mode == PM_MODE_WRITER) {
        /* Dirty before the heap is touched: a crash from here on is
         * recovered by the next open. */
        struct pm_state next = rt->st;
        next.clean = 0;
        next.durability = rt->durability;
        next.n_opens++;
        if (next.n_bases == 0 || next.bases[0].base != (uint64_t)(uintptr_t)base ||
            next.bases[0].size != rt->reserve_size) {
            uint32_t keep = next.n_bases < PM_N_BASES ? next.n_bases : PM_N_BASES - 1;
            memmove(&next.bases[1], &next.bases[0], keep * sizeof next.bases[0]);
            next.generation++;
            next.bases[0].base = (uint64_t)(uintptr_t)base;
            next.bases[0].size = rt->reserve_size;
            next.bases[0].generation = next.generation;
            next.n_bases = keep + 1;
        }
        pm_state_commit(rt, &next);
    }
    r = pm_engine_start(rt);
    if (r == 0)
        r = registry_add(rt);
    if (r < 0) {
        pm_engine_close(rt);
        rt_unmap_free(rt);
        return r;
    }
    if (rt->can_alloc)
        pm_vg_open(rt);         /* valgrind builds: free memory is off limits */
    *out = (allocator_space_t *)base;
    return 0;
}

/* A scratch space: a new file with no name (memfd, or O_TMPFILE in the
 * directory dir), made a space in place and opened for writing; nobody
 * else can open it, and it is gone at close. */
static int open_scratch(const char *dir, const struct persistent_options *o,
                        allocator_space_t **out)
{
    const char *name = dir ? dir : "(scratch space in memory)";
    if ((o->flags & ~PERSISTENT_OPEN_LAZY) != PERSISTENT_OPEN_SCRATCH)
        return pm_err(-EINVAL, "a scratch space takes no other open flag but "
                      "PERSISTENT_OPEN_LAZY (%#x)", o->flags);
    if (o->size == 0)
        return pm_err(-EINVAL, "a scratch space needs a size");
    int fr = pm_flush_check();
    if (fr < 0)
        return fr;
    int fd;
    int r = os_create_scratch(dir, &fd);
    if (r < 0)
        return pm_err(r, "%s: cannot make a scratch file: %s", name, persistent_strerror(r));
    r = os_lock_writer(fd);
    if (r == 0)
        r = space_init_empty(name, fd, o);
    if (r != 0) {
        os_close(fd);
        return r < 0 ? r : pm_err(-EIO, "%s: the scratch file is not empty", name);
    }
    return open_fd(name, fd, PM_MODE_WRITER, o->flags, o->durability, true, out);
}

static int space_open(const char *path, const struct persistent_options *opts,
                      allocator_space_t **out);

int persistent_space_open(const char *path, const struct persistent_options *opts,
                          allocator_space_t **out)
{
    pthread_once(&fork_once, fork_init);
    fork_shield_enter();
    int r = registry_reserve();
    if (r == 0) {
        r = space_open(path, opts, out);
        if (r < 0)
            registry_unreserve();
    } else if (out != NULL) {
        *out = NULL;
    }
    fork_shield_leave();
    return r;
}

static int space_open(const char *path, const struct persistent_options *opts,
                      allocator_space_t **out)
{
    struct persistent_options o;
    memset(&o, 0, sizeof o);
    if (opts)
        o = *opts;
    if ((path == NULL && !(o.flags & PERSISTENT_OPEN_SCRATCH)) || out == NULL)
        return pm_err(-EINVAL, "path and out must not be NULL");
    *out = NULL;
    uint32_t known = PERSISTENT_OPEN_CREATE | PERSISTENT_OPEN_EXCL |
                     PERSISTENT_OPEN_READONLY | PERSISTENT_OPEN_PRIVATE |
                     PERSISTENT_OPEN_NO_RECOVER | PERSISTENT_OPEN_SCRATCH |
                     PERSISTENT_OPEN_LAZY;
    if (o.flags & ~known)
        return pm_err(-EINVAL, "unknown open flags %#x", o.flags & ~known);
    if (o.durability > PERSISTENT_DURABILITY_SYNC)
        return pm_err(-EINVAL, "unknown durability %u", o.durability);
    if (o.flags & PERSISTENT_OPEN_SCRATCH)
        return open_scratch(path, &o, out);
    uint32_t mode = PM_MODE_WRITER;
    if (o.flags & PERSISTENT_OPEN_PRIVATE)
        mode = PM_MODE_PRIVATE;
    else if (o.flags & PERSISTENT_OPEN_READONLY)
        mode = PM_MODE_READONLY;
    int fr = pm_flush_check();      /* before anything is created */
    if (fr < 0)
        return fr;
    if ((o.flags & (PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_READONLY)) ==
            (PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_READONLY) ||
        (mode != PM_MODE_WRITER && (o.flags & (PERSISTENT_OPEN_CREATE | PERSISTENT_OPEN_LAZY))) ||
        ((o.flags & PERSISTENT_OPEN_NO_RECOVER) && mode != PM_MODE_PRIVATE))
        return pm_err(-EINVAL, "incompatible open flags %#x", o.flags);

    for (int attempt = 0; attempt < 8; attempt++) {
        int fd = -1;
        bool created = false;
        int r = os_open(path, mode == PM_MODE_WRITER, &fd);
        if (r == -ENOENT && (o.flags & PERSISTENT_OPEN_CREATE)) {
            r = space_create(path, &o, &fd);
            if (r == -EEXIST && !(o.flags & PERSISTENT_OPEN_EXCL))
                continue;               /* lost a race to another creator */
            if (r == -EEXIST)
                return pm_err(r, "%s: already exists", path);
            if (r < 0)
                return r;
            created = true;
        } else if (r < 0) {
            return pm_err(r, "%s: %s", path,
                          r == -EINVAL ? "not a regular file" : persistent_strerror(r));
        } else if ((o.flags & PERSISTENT_OPEN_CREATE) &&
                   (o.flags & PERSISTENT_OPEN_EXCL)) {
            os_close(fd);
            return pm_err(-EEXIST, "%s: already exists", path);
        }
        if (mode == PM_MODE_WRITER && !created) {
            r = os_lock_writer(fd);
            if (r < 0) {
                os_close(fd);
                return pm_err(r, "%s: %s", path,
                              r == PERSISTENT_E_BUSY
                                  ? "another writer has the space open (or a "
                                    "private open that allocates)"
                                  : persistent_strerror(r));
            }
            if (o.flags & PERSISTENT_OPEN_CREATE) {
                r = space_init_empty(path, fd, &o);
                if (r == 0)
                    created = true;
                else if (r == 1)
                    r = finish_interrupted_create(path, fd);
                if (r < 0) {
                    os_close(fd);
                    return r;
                }
            }
        }
        /* A private mapping is no snapshot: a page this process has not
         * written shows what a writer writes to the file later.  So a
         * private open that recovers and allocates (its heap its own)
         * holds the shared lock while it is open, and a writer's open
         * meanwhile is refused; when a writer has the space, the private
         * open is a view as on file instead, allocation disabled (a review
         * found a private heap beside a live writer handing out blocks
         * outside the space). */
        bool locked = false, writer_live = false;
        uint32_t flags = o.flags;
        if (mode == PM_MODE_PRIVATE && !(flags & PERSISTENT_OPEN_NO_RECOVER)) {
            r = os_lock_view(fd);
            if (r == PERSISTENT_E_BUSY) {
                writer_live = true;
                flags |= PERSISTENT_OPEN_NO_RECOVER;
            } else if (r < 0) {
                os_close(fd);
                return pm_err(r, "%s: cannot lock: %s", path, persistent_strerror(r));
            } else {
                locked = true;
            }
        }
        r = open_fd(path, fd, mode, flags, o.durability, created, out);
        if (r == 0 && (locked || writer_live)) {
            struct pm_rt *rt = pm_rt_of(*out);
            rt->view_locked = locked;           /* a fork's child lets go */
            if (writer_live) {
                rt->recovery_skipped = true;
                pm_err(PERSISTENT_E_BUSY, "%s: a writer has the space open: opened "
                       "privately without recovery (the heap as on file; no "
                       "allocation)", path);
            }
        }
        return r;
    }
    return pm_err(-EAGAIN, "%s: keeps appearing and disappearing", path);
}

/* ------------------------------------------------------------------------ */
/* Close, sync, growth                                                        */

static int sync_all(struct pm_rt *rt)
{
    uint64_t size = rt->data_off + (pm_load_acquire(&rt->n_pages) << rt->page_shift);
    int r = os_msync(rt->base, size);
    if (r == 0)
        r = pm_fd_check(rt, "sync");
    if (r == 0)
        r = os_fsync(rt->fd);
    if (r == 0)
        pm_crash_synced(rt->base);
    return r;
}

static int space_close(allocator_space_t *space);

int persistent_space_close(allocator_space_t *space)
{
    fork_shield_enter();
    int r = space_close(space);
    fork_shield_leave();
    return r;
}

static int space_close(allocator_space_t *space)
{
    if (space == NULL)
        return 0;
    struct pm_rt *live = pm_rt_of(space);
    if (live != NULL)
        pm_tx_auto_close(live); /* an automatic transaction open on it: aborted */
    if (live != NULL && live->can_alloc)
        pm_vg_close(live);      /* leaks (valgrind builds): roots still there */
    struct pm_rt *rt = registry_remove(space);
    if (rt == NULL)
        return pm_err(-EINVAL, "%p is not an open space", (const void *)space);
    /* every thread's cached lookup of this space is stale from here on */
    pm_fetch_add_acq_rel(&pm_close_epoch, 1);
    pm_threads_rt_close(rt);
    pm_tx_close(rt);            /* one left open is rolled back at the next open
                                   (an automatic one was aborted above) */
    uint64_t hwm = pm_hwm_pages(rt);
    pm_engine_close(rt);
    int r = 0;
    if (rt->mode == PM_MODE_WRITER) {
        if (rt->durability != PM_DUR_PROCESS)
            r = sync_all(rt);
        struct pm_state next = rt->st;
        next.clean = 1;
        next.hwm_pages = hwm;
        next.n_pages = pm_load_acquire(&rt->hdr->live.n_pages);
        next.file_size = rt->data_off + (next.n_pages << rt->page_shift);
        pm_state_commit(rt, &next);
        if (rt->durability != PM_DUR_PROCESS && r == 0)
            r = os_fsync(rt->fd);
        if (r == 0)
            pm_crash_synced(rt->base);
        if (r < 0)
            pm_err(r, "close: sync failed: %s", persistent_strerror(r));
    }
    rt_unmap_free(rt);
    return r;
}

int persistent_sync(allocator_space_t *space)
{
    struct pm_rt *rt = pm_rt_of(space);
    if (rt == NULL)
        return pm_err(-EINVAL, "%p is not an open space", (const void *)space);
    if (rt->mode != PM_MODE_WRITER)
        return 0;       /* a private or read-only mapping never writes */
    if (rt->flush)
        rt->flush->drain();
    int r = sync_all(rt);
    if (r < 0)
        return pm_err(r, "sync: %s", persistent_strerror(r));
    return 0;
}

/* ---- growth ----
 *
 * Lock-free (G1): whichever thread needs pages grows the space, and any
 * thread that finds a growth under way finishes it, so a grower stopped at
 * any instruction stops nobody.  The mapping already covers the maximum
 * (open_fd), so a growth from n to t pages is
 *   1. t chosen: a CAS of rt->grow_target from a value <= n (a hint only);
 *   2. the run bits of pages [n, t) backed (holes until then, so that the
 *      file holds no bitmap for pages it does not have) and read: they
 *      must be clear, else the file is damaged there and nothing is done
 *      (E_CORRUPT);
 *   3. the file extended to t pages (fallocate: a full disk fails here,
 *      never later as SIGBUS) -- idempotent, so every helper does it;
 *   4. the commit: a CAS of hdr->live.n_pages from n to t, made durable;
 *   5. publication: rt->n_pages raised to t, by whoever sees the commit,
 *      after it made the commit durable itself, so no page is handed out
 *      before the growth that holds it survives a crash.
 * A helper that stalls anywhere can only repeat steps 2-3 later (harmless)
 * or fail its commit CAS (hdr moved on); the committed count never goes
 * back.  A helper whose step 2 or 3 fails re-reads the commit before it
 * reports anything, so a failure seen after someone else's commit (bits of
 * pages already handed out, say) is never taken for damage. */

static uint64_t pages_bytes(const struct pm_rt *rt, uint64_t n)
{
    return rt->data_off + (n << rt->page_shift);
}

/* Step 5 for a committed count n. */
static void publish_pages(struct pm_rt *rt, uint64_t n)
{
    uint64_t cur = pm_load_acquire(&rt->n_pages);
    if (cur >= n)
        return;
    /* the commit may be another thread's, not yet written back */
    persist_header(rt, &rt->hdr->live.n_pages, sizeof rt->hdr->live.n_pages);
    pm_crash_resize(rt->base, pages_bytes(rt, n));
    while (cur < n && !pm_cas_weak_acq_rel(&rt->n_pages, &cur, n))
        ;
}

/* Steps 2-4 of a growth from n to t pages. */
static int grow_step(struct pm_rt *rt, uint64_t n, uint64_t t)
{
    int r = pm_fd_check(rt, "growth");
    if (r < 0)
        return r;
    /* a file someone cut short under the space: extending it again from
     * the space's end would bring its lost pages back as zeros, live
     * blocks and headers among them, with no fault to say so (a helper's
     * hunt found a growth that zeroed 193 of 200 blocks); the growth
     * fails instead, and the pages cut off fault when touched */
    uint64_t size;
    if (os_file_size(rt->fd, &size) == 0 && size < pages_bytes(rt, n))
        return pm_err(PERSISTENT_E_TRUNCATED, "growth: the file is %llu bytes, shorter than "
                      "the space's %llu: cut short by someone else; the space does not "
                      "grow over it", (unsigned long long)size,
                      (unsigned long long)pages_bytes(rt, n));
    /* the new pages' run bits are holes until now (pm_back_file): backed
     * before they are read, since a read fault on a hole backs the page on
     * tmpfs, and on a full one is a SIGBUS, not a failed growth.  The unit
     * may hold live words of pages below n: never glibc's emulation, which
     * writes there (os_allocate_live) */
    const uint64_t offs[3] = {rt->fixed.start_bits_off, rt->fixed.end_bits_off,
                              rt->fixed.kind_bits_off};
    uint64_t g = pm_back_unit(rt->fd), end = pages_bytes(rt, n);
    for (int i = 0; i < 3 && r == 0; i++) {
        uint64_t a = (offs[i] + n / 64 * 8) / g * g;
        uint64_t b = (offs[i] + (t + 63) / 64 * 8 + g - 1) / g * g;
        r = os_allocate_live(rt->fd, a, (b < end ? b : end) - a);
    }
    if (r < 0)
        return pm_err(r, "growth to %llu bytes: the run bitmaps: %s",
                      (unsigned long long)pages_bytes(rt, t), persistent_strerror(r));
    const pm_atomic_u64 *bits[3] = {rt->start_bits, rt->end_bits, rt->kind_bits};
    for (int i = 0; i < 3; i++) {
        uint64_t p = pg_next_set(bits[i], n, t);
        if (p != PG_NONE)
            return pm_err(PERSISTENT_E_CORRUPT, "growth: page %llu past the end "
                          "of the space has run bits set; the file is damaged "
                          "there and the space does not grow over it",
                          (unsigned long long)p);
    }
    if (rt->open_flags & PERSISTENT_OPEN_LAZY) {
        /* the new pages are holes until written: said durably first, so
         * that an eager open fills them; the size comes from allocating
         * the last page alone (never shrinks the file, as a truncate by a
         * grower that lags behind could) */
        pm_holes_announce(rt, PM_HOLES_LAZY);
        r = os_allocate(rt->fd, pages_bytes(rt, t) - rt->page_size, rt->page_size);
    } else {
        r = os_allocate(rt->fd, pages_bytes(rt, n), (t - n) << rt->page_shift);
    }
    /* where power failure counts, the new size is durable before the
     * header says so: else a header could outlive its file's length */
    if (r == 0 && rt->durability != PM_DUR_PROCESS) {
        r = os_fdatasync(rt->fd);
        if (r == 0)
            pm_crash_synced(rt->base);
    }
    if (r < 0)
        return pm_err(r, "growth to %llu bytes: %s",
                      (unsigned long long)pages_bytes(rt, t), persistent_strerror(r));
    pm_hook(PM_HOOK_GROW_ALLOCATED);
    uint64_t expect = n;
    if (pm_cas_strong_acq_rel(&rt->hdr->live.n_pages, &expect, t)) {
        persist_header(rt, &rt->hdr->live.n_pages, sizeof rt->hdr->live.n_pages);
        pm_hook(PM_HOOK_GROW_COMMITTED);
    }
    return 0;
}

int pm_space_grow(struct pm_rt *rt, uint64_t seen_pages, uint64_t need_pages)
{
    if (rt->mode != PM_MODE_WRITER)
        return -ENOMEM;
    uint64_t unit = PM_DATA_ALIGN >> rt->page_shift;
    bool least_tried = false;
    for (;;) {
        uint64_t n = pm_load_acquire(&rt->hdr->live.n_pages);
        publish_pages(rt, n);
        if (n > seen_pages)
            return 0;                   /* grown meanwhile, by anyone */
        if (n >= rt->max_pages)
            return -ENOMEM;
        uint64_t t = pm_load_acquire(&rt->grow_target);
        if (t <= n) {
            uint64_t add = need_pages > n / 8 ? need_pages : n / 8;
            add = round_up(add ? add : 1, unit);
            uint64_t next = add < rt->max_pages - n ? n + add : rt->max_pages;
            if (!pm_cas_strong_acq_rel(&rt->grow_target, &t, next))
                continue;
            t = next;
            pm_hook(PM_HOOK_GROW_TARGET);
        }
        int r = grow_step(rt, n, t);
        if (r < 0) {
            if (pm_load_acquire(&rt->hdr->live.n_pages) != n)
                continue;               /* stale: someone committed */
            /* an eighth more could not be had (a file system nearly full,
             * a file size limit near): what the request needs alone may
             * be, once, before the call fails (G5b; a helper's hunt found
             * a 100 KB request refused with 256 KiB free) */
            uint64_t least = round_up(need_pages ? need_pages : 1, unit);
            least = least < rt->max_pages - n ? n + least : rt->max_pages;
            if (!least_tried && t > least) {
                least_tried = true;
                (void)pm_cas_strong_acq_rel(&rt->grow_target, &t, least);
                continue;
            }
            /* give the target up, so a later growth may choose again */
            (void)pm_cas_strong_acq_rel(&rt->grow_target, &t, n);
            return r;
        }
    }
}

/* Read-only and forensic opens adopt a writer's growth: the mapping covers
 * the maximum already, so only the page count moves, once the header says
 * so and the file really holds the pages (a damaged or foreign count is
 * ignored: never a page that would fault). */
void pm_follow(struct pm_rt *rt)
{
    if (!rt->follows)
        return;
    uint64_t n = pm_load_acquire(&rt->hdr->live.n_pages);
    uint64_t cur = pm_load_acquire(&rt->n_pages);
    if (n <= cur || n > rt->map_pages || (n << rt->page_shift) % PM_DATA_ALIGN != 0)
        return;
    uint64_t fsize;
    if (pm_fd_check(rt, "follow growth") < 0 || os_file_size(rt->fd, &fsize) < 0 ||
        fsize < pages_bytes(rt, n))
        return;
    while (cur < n && !pm_cas_weak_acq_rel(&rt->n_pages, &cur, n))
        ;
}

/* ------------------------------------------------------------------------ */
/* Information and pointers                                                   */

/* The mappings the space knows of: those its open saw, and for a view
 * (read-only, private) any a writer that opened the file since recorded
 * in the header, in a slot whose checksum holds (until 2026-12-06 a view
 * knew only its open's, and could not rewrite a pointer stored by a
 * writer that mapped the file elsewhere after it: a helper's hunt). */
static void known_state(const struct pm_rt *rt, struct pm_state *out)
{
    *out = rt->st;
    if (rt->mode == PM_MODE_WRITER)
        return;                         /* its own open wrote the newest */
    struct pm_state s[2];
    memcpy(s, (const char *)rt->hdr + offsetof(struct pm_header, state), sizeof s);
    for (int i = 0; i < 2; i++)
        if (s[i].seq > out->seq && s[i].generation > out->generation &&
            s[i].n_bases <= PM_N_BASES && pm_state_checksum(&s[i]) == s[i].checksum)
            *out = s[i];
}

int persistent_space_info(allocator_space_t *space, struct persistent_info *info)
{
    struct pm_rt *rt = pm_rt_of(space);
    if (rt == NULL || info == NULL)
        return pm_err(-EINVAL, "not an open space");
    pm_follow(rt);
    const struct pm_fixed *f = &rt->fixed;
    memset(info, 0, sizeof *info);
    info->format_major = f->major;
    info->format_minor = f->minor;
    info->page_size = (uint32_t)rt->page_size;
    info->superblock_size = f->sb_size;
    uint64_t n = pm_load_acquire(&rt->n_pages);
    info->capacity = n << rt->page_shift;
    info->file_size = rt->data_off + info->capacity;
    info->max_capacity = rt->max_pages << rt->page_shift;
    info->meta_size = rt->data_off;
    info->used_size = (rt->can_alloc ? pm_hwm_pages(rt) : rt->st.hwm_pages) << rt->page_shift;
    struct pm_state k;
    known_state(rt, &k);
    info->generation = k.generation;
    info->create_time_ns = f->create_time_ns;
    memcpy(info->uuid, f->uuid, sizeof info->uuid);
    info->growable = (f->flags & PM_FLAG_GROWABLE) ? 1u : 0u;
    info->durability = rt->durability;
    /* what the file says (a view's own is PROCESS: a helper's hunt found
     * the inspector calling every file's mode "process-crash") */
    info->recorded_durability = k.durability >= PM_DUR_PROCESS && k.durability <= PM_DUR_SYNC
                                    ? k.durability
                                    : PM_DUR_PROCESS;
    info->clean_at_open = rt->clean_at_open;
    info->recovered = rt->recovered;
    info->open_flags = rt->open_flags |
                       (rt->recovery_skipped ? PERSISTENT_OPEN_NO_RECOVER : 0u);
    info->recovery_skipped = rt->recovery_skipped;
    info->n_bases = k.n_bases;
    for (uint32_t i = 0; i < k.n_bases && i < 16 && i < PM_N_BASES; i++) {
        info->bases[i].base = k.bases[i].base;
        info->bases[i].size = k.bases[i].size;
        info->bases[i].generation = k.bases[i].generation;
    }
    return 0;
}

/* A pointer from the mapping at base (of size bytes) rewritten into the
 * current one; only into the pages the file holds, whatever a (possibly
 * forged) base record says. */
static void *rebase(struct pm_rt *rt, uint64_t p, uint64_t base, uint64_t size)
{
    uint64_t limit = pages_bytes(rt, pm_load_acquire(&rt->n_pages));
    if (size > limit)
        size = limit;
    if (p < base || p - base >= size)
        return NULL;
    return rt->base + (p - base);
}

void *persistent_ptr(allocator_space_t *space, void *ptr)
{
    struct pm_rt *rt = pm_rt_of(space);
    if (rt == NULL || ptr == NULL)
        return NULL;
    pm_follow(rt);
    uint64_t p = (uint64_t)(uintptr_t)ptr;
    void *q = rebase(rt, p, (uint64_t)(uintptr_t)rt->base, rt->reserve_size);
    if (q != NULL)
        return q;
    struct pm_state k;
    known_state(rt, &k);
    for (uint32_t i = 0; i < k.n_bases && i < PM_N_BASES; i++) {
        const struct pm_base_rec *e = &k.bases[i];
        if (p >= e->base && p - e->base < e->size)
            return rebase(rt, p, e->base, e->size);
    }
    return NULL;
}

void *persistent_ptr_from(allocator_space_t *space, void *ptr, uint64_t generation)
{
    struct pm_rt *rt = pm_rt_of(space);
    if (rt == NULL || ptr == NULL)
        return NULL;
    pm_follow(rt);
    uint64_t p = (uint64_t)(uintptr_t)ptr;
    struct pm_state k;
    known_state(rt, &k);
    for (uint32_t i = 0; i < k.n_bases && i < PM_N_BASES; i++) {
        const struct pm_base_rec *e = &k.bases[i];
        if (e->generation == generation)
            return rebase(rt, p, e->base, e->size);
    }
    return NULL;
}

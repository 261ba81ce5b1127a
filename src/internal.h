/* Internal types and cross-file prototypes, grouped by the file that
 * defines them.  Nothing here is installed.
 *
 * The volatile runtime of an open space (struct pm_rt) lives in process
 * memory, never in the file: page claims, the page -> superblock map,
 * superblock ownership, partial lists and thread records are all hints that
 * every open rebuilds from the persistent truth described in layout.h.
 */
#ifndef PM_INTERNAL_H
#define PM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

/* Built with -fvisibility=hidden: only the public API is exported. */
#pragma GCC visibility push(default)
#include "persistent_mem.h"
#pragma GCC visibility pop
/* Everything declared below is the library's own, and says so: the flag
 * hides definitions, not extern declarations, so without this each use of
 * a global from another file went through the GOT (two instructions, on
 * the fast paths' check of pm_close_epoch too, instead of one; a GNU
 * pragma, which clang accepts). */
#pragma GCC visibility push(hidden)
#include "atomic.h"
#include "layout.h"
#include "persist.h"

/* Thread-local state is read on every allocation; the initial-exec model
 * makes that a plain %fs-relative load instead of a __tls_get_addr call
 * (a GNU attribute, the reason this header is not plain C11). */
#define PM_TLS_IE __attribute__((tls_model("initial-exec")))

#define PM_LIKELY(x)   __builtin_expect(!!(x), 1)
#define PM_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define PM_N_CLASSES      PERSISTENT_N_CLASSES
#define PM_MAX_SMALL      65536u      /* largest size class */
#define PM_OWNED_MAX      8           /* superblocks a thread keeps per class
                                         besides the current one */
#define PM_SPARE_BYTES    (UINT64_C(4) << 20)  /* emptied superblocks a thread
                                         keeps in its owned sets, at most
                                         (a sixteenth of a smaller space) */
#define PM_MAX_RECS       4096u       /* thread records per open space */
#define PM_RUN_SLOTS      8u          /* freed page runs a thread keeps */
#define PM_RUN_MAX_PAGES  64u         /* the longest run it may keep */
#define PM_NO_SB          UINT32_MAX
#define PM_MAX_CAPACITY   (UINT64_C(1) << 40)  /* 1 TiB of pages */

/* struct pm_rt.mode */
#define PM_MODE_WRITER    1u
#define PM_MODE_READONLY  2u
#define PM_MODE_PRIVATE   3u

/* Superblock anchor (struct pm_sbctl.anchor):
 *   bits 0..2   state
 *   bits 8..23  record id: the owner when OWNED or REVOKING, the last owner
 *               when ORPHAN
 *   bits 32..63 version, bumped by every transition so a stale CAS fails */
#define PM_SB_FREE        0u   /* not a superblock (or being set up) */
#define PM_SB_OWNED       1u   /* one thread allocates from it */
#define PM_SB_ORPHAN      2u   /* nobody owns it, in no list (was full) */
#define PM_SB_LISTED      3u   /* in one of its class's partial lists */
#define PM_SB_REVOKING    4u   /* a thief is taking it from its owner */

static inline uint32_t pm_anchor_state(uint64_t a) { return (uint32_t)(a & 7u); }
static inline uint32_t pm_anchor_owner(uint64_t a) { return (uint32_t)(a >> 8) & 0xffffu; }
static inline uint64_t pm_anchor_make(uint64_t old, uint32_t state, uint32_t owner)
{
    return ((old >> 32) + 1) << 32 | (uint64_t)owner << 8 | state;
}
/* The low half of an anchor that says OWNED by owner: pm_anchor_make
 * leaves the bits beside the state and the owner clear, so one compare of
 * the low half tests both (the free fast path). */
static inline uint32_t pm_anchor_owned_low(uint32_t owner)
{
    return owner << 8 | PM_SB_OWNED;
}

/* Volatile control of one superblock, indexed by its first page.  Stale
 * accesses through an old index land on another valid control word (or an
 * unused one), never on block memory: that is why it is not in-band. */
struct pm_sbctl {
    pm_atomic_u64 anchor;
    pm_atomic_u64 summary;        /* bit w: remote word w may have bits */
    pm_atomic_u32 next;           /* partial-list link: first page + 1 */
    pm_atomic_u32 n_pub;          /* publishing remote frees in flight */
    pm_atomic_u32 cls;
    pm_atomic_u16 frees;          /* the owner's frees into it since it was
                                     set aside (a hint, owner only) */
    pm_atomic_u16 marks;          /* root and transaction marks in this run,
                                     and PM_MARKS_HOLD (roots.c): a free
                                     into it checks them */
};
/* In pm_sbctl.marks: a block of the run may be held by a transaction's
 * snapshot (rt->snapmark, rt->cohold).  Holds are not counted in the run
 * (see pm_hold_at); the flag is set by the run's first hold and cleared
 * when the run is carved again. */
#define PM_MARKS_HOLD 0x8000u
/* The table of holds beyond the first (pm_hold_at): its slots, the slots
 * a block's entries may be in (from its hash on), and the count's bits. */
#define PM_COHOLD_SLOTS 1024u
#define PM_COHOLD_WINDOW 16u
#define PM_COHOLD_BITS 16u
_Static_assert(PM_MAX_RECS < (1u << PM_COHOLD_BITS),
               "a block's count of holds (one a thread's transaction) fits below its key");

/* A superblock's geometry (the header's class, block count and data start)
 * in the high half of each of its page map entries, so that a free finds
 * its block's bitmap word from the page map alone and reads neither the
 * header's line nor, before that, the control word (docs/design.md "Fast
 * paths").  Written with the header when the superblock is carved or
 * rebuilt, so whoever owns it reads the header's values; anyone else uses
 * them only as the header's own fields would be used (checked afterwards). */
#define PM_GEOM_CLS_BITS 6u
#define PM_GEOM_N_BITS   13u
_Static_assert(PM_N_CLASSES <= (1u << PM_GEOM_CLS_BITS), "class fits the geometry word");
_Static_assert(PM_SB_MAX_BLOCKS < (1u << PM_GEOM_N_BITS), "block count fits the geometry word");
_Static_assert((1u << PM_MAX_PAGE_SHIFT) < (1u << (32 - PM_GEOM_CLS_BITS - PM_GEOM_N_BITS)),
               "a data start (at most the largest page) fits the geometry word");
static inline uint32_t pm_geom_make(uint32_t cls, uint32_t n_blocks, uint32_t data_start)
{
    /* data_start is the header and its bitmaps (at most 64 + 16 * 64
     * bytes) rounded up to the block alignment, a power of two of at most
     * the largest page: at most 1 << PM_MAX_PAGE_SHIFT, though it can pass
     * the space's own page when that is small (over 1 KiB with 256-byte
     * pages).  In bytes, so a free decodes it with one shift. */
    return cls | n_blocks << PM_GEOM_CLS_BITS | data_start << (PM_GEOM_CLS_BITS + PM_GEOM_N_BITS);
}
static inline uint32_t pm_geom_cls(uint32_t g) { return g & ((1u << PM_GEOM_CLS_BITS) - 1); }
static inline uint32_t pm_geom_n_blocks(uint32_t g)
{
    return (g >> PM_GEOM_CLS_BITS) & ((1u << PM_GEOM_N_BITS) - 1);
}
static inline uint32_t pm_geom_data_start(uint32_t g)
{
    return g >> (PM_GEOM_CLS_BITS + PM_GEOM_N_BITS);
}
static inline uint64_t pm_pagemap_entry(uint32_t first, uint32_t geom)
{
    return (uint64_t)geom << 32 | (first + 1);
}
/* the superblock's first page + 1, 0 for a page in no superblock */
static inline uint32_t pm_pagemap_first1(uint64_t e) { return (uint32_t)e; }
static inline uint32_t pm_pagemap_geom(uint64_t e) { return (uint32_t)(e >> 32); }

/* Geometry of one size class in one space. */
struct pm_class {
    uint32_t block_size;
    uint32_t n_blocks;            /* 0: class not served by superblocks here */
    uint32_t n_pages;             /* preferred superblock length */
    uint32_t min_pages;           /* shortest cut (a quarter of the blocks) */
    uint32_t floor_pages;         /* shortest a header may say (two blocks) */
    uint32_t data_start;          /* block 0 offset from superblock start */
    uint32_t n_words;
    uint32_t align;               /* natural alignment of every block */
    uint64_t recip;               /* ceil(2^40 / block_size) */
    uint64_t inv;                 /* pm_class_inv(block_size), and */
    uint32_t bshift;              /* the power of two in block_size:
                                     pm_block_index */
    uint64_t last_mask;           /* valid bits of the last bitmap word */
};

/* Per class, owner-only state of a thread record.  The first four fields
 * are all the malloc fast path reads. */
struct pm_tcache {
    /* a line's alignment: what malloc and free read of it (up to bshift)
     * is in one line, and the size, 128, is a shift of the class */
    _Alignas(64) uint64_t mask;   /* free blocks of the current word not yet
                                     handed out */
    char *wbase;                  /* address of block 64 * word */
    pm_atomic_u64 *aword;         /* the current allocation-bitmap word */
    uint32_t bsize;
    uint32_t sb;                  /* current superblock, PM_NO_SB if none */
    uint32_t word;                /* index of aword in its bitmap */
    uint32_t n_owned;
    uint64_t freemap;             /* words of sb that may have free blocks
                                     not in mask (a hint: rebuilt when sb
                                     becomes current or is collected; the
                                     free fast path adds a freed block's
                                     word, the current word too) */
    uint64_t inv;                 /* pm_class_inv(bsize), and */
    uint32_t bshift;              /* the power of two in bsize: free's
                                     exact division (pm_block_index), here
                                     because free reads this line anyway */
    uint32_t owned[PM_OWNED_MAX]; /* other superblocks this thread owns,
                                     full when set aside (see superblock.c) */
    uint32_t spare;               /* bit i: owned[i] was emptied and kept
                                     (a spare, superblock.c); bits from
                                     n_owned up are clear */
};

/* One thread's state in one open space.  Records are type-stable: they are
 * recycled, never freed, while the space is open. */
struct pm_trec {
    pm_atomic_uptr busy;          /* inside an owner operation: what it
                                     may touch (pm_op_begin_word) */
    pm_atomic_u32 revokes;        /* bumped by a thief before membarrier */
    uint32_t seen_revokes;
    uint32_t id;                  /* index in rt->recs, >= 1 */
    uint32_t owned_low;           /* pm_anchor_owned_low(id) */
    pm_atomic_u32 in_use;
    pm_atomic_u32 exiting;        /* its thread's exit is handing it back
                                     (an automatic transaction's begin
                                     refuses meanwhile: thread.c) */
    pm_atomic_u32 orphan_tid;     /* taken by a thread whose exit destructor
                                     had run (no destructor hands it back):
                                     that thread's id, and whoever finds it
                                     gone hands the record back (thread.c) */
    int32_t lane;                 /* publish lane index, -1 if none */
    struct pm_tx *tx;             /* its transaction state (tx.c), NULL
                                     until its first transaction */
    pm_atomic_u32 tx_open;        /* its transaction's depth is not 0 */
    pm_atomic_u32 tx_held;        /* its last commit's frees are held (not
                                     yet reusable); these two are all an
                                     automatic transaction's begin reads
                                     of other threads' transactions */
    uint32_t spare_pages;         /* its spares' pages, by their classes'
                                     preferred lengths (owner only) */
    pm_atomic_u64 runs[PM_RUN_SLOTS];  /* page runs it freed and keeps
                                     claimed for its next large blocks
                                     (pages.c): first << 8 | pages, 0 if
                                     empty; any thread may empty a slot */
    pm_atomic_u64 pin;            /* publish.c: the offset of a block its
                                     lane names that another thread may
                                     free meanwhile; pages << 1 |
                                     PM_PIN_DEFER once one did and left
                                     that free's finish to this thread */
    struct pm_tcache cls[PM_N_CLASSES];
};
#define PM_PIN_DEFER UINT64_C(1)

/* What identifies the open file description behind a descriptor: the file
 * (device, inode) and a mark only it carries (its file position, which the
 * library never uses for I/O).  See os_fd_verify. */
struct os_file_id {
    uint64_t dev, ino, mark;
};

/* The page allocator's hints (pages.c): one per request length of 1-16
 * pages, then one per length bucket 17-31, 32-63, ... 256-511, 512 up. */
#define PM_PAGE_HINTS 22u

/* An open space. */
struct pm_rt {
    char *base;                   /* == (char *)space */
    struct pm_header *hdr;
    bool view_locked;             /* a private open that allocates: it holds
                                     the file's shared lock (space.c) */
    struct pm_fixed fixed;        /* the fixed header as validated at open:
                                     read from here, never from the
                                     mapping, which another process may
                                     change under a view (G8) */
    int fd;
    uint32_t mode;                /* PM_MODE_* */
    uint32_t open_flags;          /* PERSISTENT_OPEN_* */
    uint32_t durability;          /* PM_DUR_* in effect */
    const struct pm_flush_ops *flush;  /* per-change write-back: PMEM only
                                          (and every mode under crash tests) */
    bool flush_sim;               /* the crash simulator's power model,
                                     which must see every write to the
                                     file (the kill model counts pwrites
                                     with pm_crash_point) */
    uint32_t map_mode;            /* PM_MODE_* the file is mapped with */
    bool map_sync;                /* DAX: mapped with MAP_SYNC */
    uint64_t instance;            /* unique per open in this process */
    uint64_t reserve_size;        /* bytes of address space reserved */
    bool clean_at_open;
    bool recovered;
    bool can_alloc;               /* writer, or private with recovery */
    uint64_t tail_image;          /* a page image page_restore refused (it
                                     would set run bits past the committed
                                     pages, or lies in the bitmaps' words
                                     past them): its offset + 1, else 0 */
    bool recovery_skipped;        /* private open of a damaged space: no
                                     recovery, no allocation */

    /* geometry, copied from the fixed header */
    uint32_t page_shift;
    uint64_t page_size;
    uint64_t data_off;
    uint64_t max_pages;
    uint64_t max_bytes;           /* max_pages << page_shift: what the page
                                     map covers (entries past n_pages are 0) */
    char *data;                   /* base + data_off */
    struct pm_snap *snap;         /* the open's copy of the superblock
                                     headers (recover.c); NULL otherwise */
    pm_atomic_u64 n_pages;        /* pages in the file and mapped */

    /* persistent run bitmaps (in the mapping) */
    pm_atomic_u64 *start_bits, *end_bits, *kind_bits;

    /* mutable header state: a copy of the current slot (open and close
     * write it; growth only moves hdr->live.n_pages, see space.c) */
    struct pm_state st;
    int cur_slot;
    pm_atomic_u64 grow_target;    /* pages a growth in progress aims at;
                                     <= hdr->live.n_pages when none is */
    uint64_t map_pages;           /* pages the file mapping covers: the
                                     maximum, or the open-time size when a
                                     private mapping could not reserve it */
    bool follows;                 /* read-only or forensic: adopts the
                                     writer's growth (pm_follow) */
    bool own_copy;                /* a private mapping of its own, which no
                                     writer changes under it (a private open
                                     that recovers, a judge's shadow): the
                                     file's holes under zeroed memory
                                     (space.c private_holes_zero) */

    /* the file behind fd, checked before every use (os_fd_verify) */
    struct os_file_id fid;
    pm_atomic_u32 fd_lost;        /* fd no longer names our file: never
                                     touched again */

    /* page allocator (pages.c) */
    pm_atomic_u64 *used;          /* claimed pages, 1 bit each */
    pm_atomic_u64 *punched;       /* pages punched out of the file */
    bool can_punch;               /* writer, shared mapping, 4 KiB pages */
    pm_atomic_u64 hints[PM_PAGE_HINTS];  /* per run length: lowest start | version */
    uint64_t used_words;

    /* superblocks (superblock.c) */
    pm_atomic_u64 *pagemap;       /* page -> pm_pagemap_entry() of its superblock */
    struct pm_sbctl *ctl;         /* indexed by first page */
    /* tagged heads of each class's two partial lists: [0] where a
     * superblock is listed; a scavenge moves what it keeps from one to the
     * other, [1] to [0] and then [0] to [1] (superblock.c sort_lists) */
    pm_atomic_u64 partial[PM_N_CLASSES][2];
    /* per class, raised by a scavenge before it takes a superblock from
     * one of the lists and after it has put it on the other: a pop that
     * found both empty looks again when this moved meanwhile */
    pm_atomic_u64 sort_moves[PM_N_CLASSES];
    struct pm_class cls[PM_N_CLASSES];
    uint32_t n_small;             /* classes [0, n_small) are served */
    uint32_t max_small;           /* block size of class n_small - 1 */
    uint32_t run_max;             /* longest run a thread keeps (pages.c) */
    uint32_t spare_max;           /* pages of spares a thread may keep */

    /* thread records (thread.c) */
    struct pm_trec *recs;
    pm_atomic_u32 n_recs;         /* high-water of record ids */
    pm_atomic_u32 closing;
    pm_atomic_u32 pressure;       /* threads about to report ENOMEM while
                                     owners inside a call keep superblocks
                                     (superblock.c sb_starving) */

    /* marks (roots.c): which 16-byte granules of the pages start a root's
     * block, or a block an open transaction allocated or frees (tx.c);
     * per run (struct pm_sbctl.marks) how many marks it holds */
    pm_atomic_u64 *rootmark, *txmark;
    pm_atomic_u64 *snapmark;      /* blocks an open transaction snapshotted
                                     (tx.c): plain frees refused */
    /* the holds of a block beyond its snapmark bit: the count of open
     * transactions holding it is the bit plus its entries here (key: its
     * granule + 1 above PM_COHOLD_BITS, a count below; see pm_hold_at).
     * Written only by second holds and their releases: lines of their own,
     * away from the read-mostly fields around them (the struct is not
     * aligned: calloc) */
    char cohold_pad0[64];
    pm_atomic_u64 cohold[PM_COHOLD_SLOTS];
    pm_atomic_u64 n_cohold;       /* holds counted in cohold, or about to be */
    char cohold_pad1[64];
    pm_atomic_u64 *ownmark;       /* the library's own blocks (transaction
                                     logs, lane and root overflow tables):
                                     nobody's to free, resize or snapshot */
    pm_atomic_u64 *vgknown;       /* memcheck.c: blocks memcheck was told
                                     of (valgrind builds only) */

    /* publish lanes (publish.c) */
    pm_atomic_u32 *lane_owner;    /* record id holding each lane */
    struct pm_lane_table *_Atomic lane_chunk[64];  /* overflow tables */
    pm_atomic_u32 n_lane_chunks;
    pm_atomic_u32 chunk_lane_busy; /* a thread adds a lane table through
                                     the header's chunk lane */
    pm_atomic_u64 auto_resets;    /* aborts of automatic transactions that
                                     rebuilt the runtime (pm_auto_settle) */

    /* volatile allocations of this runtime, released at close */
    void *vol;
    size_t vol_size;
};

/* ---- error.c ---- */
int pm_err(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void pm_misuse(struct pm_rt *rt, int code, const void *ptr, const char *what);
int pm_code_to_errno(int code);

/* ---- checksum.c ---- */
uint32_t pm_crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t pm_fixed_checksum(const struct pm_fixed *f);
uint32_t pm_state_checksum(const struct pm_state *s);

/* ---- os_posix.c ---- */
int os_open(const char *path, int writable, int *fd);
int os_create_temp(const char *path, unsigned mode, int *fd, char *tmp,
                   size_t tmp_len);
int os_link(const char *from, const char *to);
int os_create_unnamed(const char *path, unsigned mode, int *fd);
int os_create_scratch(const char *dir, int *fd);
int os_link_unnamed(int fd, const char *path);
int os_fsync_dir(const char *path);
void os_clean_stale_temps(const char *path);
int os_truncate(int fd, uint64_t size);
int os_reopen_private(int fd);
uint64_t os_next_data(int fd, uint64_t off, uint64_t end);
uint64_t os_next_hole(int fd, uint64_t off, uint64_t end);
void os_unlink(const char *path);
int os_lock_writer(int fd);
/* A private open that allocates: the shared lock on fd's description for
 * as long as it is open (a writer's open meanwhile is refused: the file
 * must not change under the copy); PERSISTENT_E_BUSY when a writer has the
 * space or waits for it. */
int os_lock_view(int fd);
/* A view's shared lock for judging a rollback, on a description of its
 * own (closing it releases the lock); false while a writer has the space
 * or waits for it. */
bool os_lock_judge(int fd);
/* Whether, at this instant, no writer has the space whose descriptor is
 * fd (checked to be the file of id) open or waits for it: a shared lock
 * taken without waiting on a description of its own, dropped at once. */
bool os_no_writer(int fd, const struct os_file_id *id);
void os_unlock(int fd);            /* the description's flock, for every copy */
void os_release_after_fork(int fd, void *addr, uint64_t len, uint64_t used);
void os_close(int fd);
int os_file_size(int fd, uint64_t *size);
int os_pread_all(int fd, void *buf, size_t len, uint64_t off);
ssize_t os_pread_upto(int fd, void *buf, size_t len, uint64_t off);
int os_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
int os_allocate(int fd, uint64_t off, uint64_t len);
int os_punch(int fd, uint64_t off, uint64_t len);
uint64_t os_block_size(int fd);
int os_allocate_live(int fd, uint64_t off, uint64_t len);
int os_fill_holes(int fd, uint64_t from, uint64_t to);
int os_fsync(int fd);
int os_fdatasync(int fd);
int os_pwrite_durable(int fd, const void *buf, size_t len, uint64_t off);
int os_fd_mark(int fd, struct os_file_id *id);
int os_fd_move_high(int fd);
int os_fd_verify(int fd, const struct os_file_id *id);
int os_msync(void *addr, size_t len);
void *os_reserve(uint64_t preferred, uint64_t size, uint64_t align,
                 bool *at_preferred);
int os_map_zero(void *addr, uint64_t len);
int os_map_file(void *addr, uint64_t len, int fd, uint64_t off,
                uint32_t mode, bool sync);
bool os_probe_dax(int fd);
void os_unmap(void *addr, uint64_t len);
uint32_t os_thread_id(void);
bool os_thread_gone(uint32_t tid);
void *os_vol_alloc(size_t size);
void os_vol_free(void *p, size_t size);
#define OS_HUGE ((size_t)2 << 20)      /* a transparent huge page (x86-64, arm64 4K) */
void os_vol_hugepages(void *p, size_t len);
bool os_write_fits(uint64_t end);
uint64_t os_time_ns(void);
uint64_t os_mono_ns(void);        /* CLOCK_MONOTONIC */
void os_yield(void);
/* fn(args[i]) for each i < n, args[0] on the calling thread and the others
 * on threads of their own (every signal but a fault's blocked in them,
 * small stacks), all finished when it returns, with no cancellation point
 * on the way; a part whose thread cannot be made (or past
 * OS_PARALLEL_MAX) runs on the caller after its own.  errno is kept. */
#define OS_PARALLEL_MAX 16u
void os_run_parallel(void (*fn)(void *), void *const *args, unsigned n);
/* How many threads a writer's open reads the headers of n_sb superblocks
 * with (recover.c). */
unsigned pm_snap_readers(uint64_t n_sb);
/* The most a writer's open copies of the headers, in bytes (256 MiB;
 * tests lower it, to reach what it does when that runs short). */
extern uint64_t pm_snap_arena_max;
void os_random(void *buf, size_t len);
size_t os_page_size(void);
int os_protect(void *addr, size_t len, bool writable);
int os_catch_faults(bool (*fn)(void *addr));
void os_faults_after_fork(void);       /* a child's: an install under way */
void os_sleep_us(unsigned us);
void os_fatal(const char *msg) __attribute__((noreturn));
int os_membarrier_init(void);
int os_membarrier(void);
uint32_t os_ncpu(void);            /* this thread's affinity, at least 1 */

/* ---- space.c ---- */
struct pm_rt *pm_rt_of(const allocator_space_t *space);
int pm_state_commit(struct pm_rt *rt, const struct pm_state *next);
bool pm_instance_open(uint64_t instance);
struct pm_rt *pm_rt_pin(uint64_t instance);
void pm_rt_unpin(struct pm_rt *rt);
void pm_rt_pins_drain(void);
int pm_space_grow(struct pm_rt *rt, uint64_t seen_pages, uint64_t need_pages);
int pm_space_map(struct pm_rt *rt, uint32_t mode, bool sync);
void pm_follow(struct pm_rt *rt);
int pm_fd_check(struct pm_rt *rt, const char *what);
bool pm_fd_ours(struct pm_rt *rt);
int pm_fd_again(struct pm_rt *rt);
int pm_back_file(int fd, const struct pm_fixed *f, uint64_t n_pages, bool holes_only);
uint64_t pm_back_unit(int fd);
bool pm_in_bits_tail(const struct pm_fixed *f, uint64_t n_pages, uint64_t off, uint64_t len);
uint64_t pm_backed_word(const struct pm_fixed *f);
extern pm_atomic_u64 pm_close_epoch;
extern bool pm_test_no_tmpfile;
extern bool pm_test_no_fd_again;

/* Persistence of one metadata change (PMEM durability only; the other
 * modes rely on the page cache and sync points).  Every call is also a
 * crash point for the deterministic crash tests. */
static inline void pm_persist(struct pm_rt *rt, const void *addr, size_t len)
{
    if (PM_UNLIKELY(rt->flush != NULL)) {
        rt->flush->flush(addr, len);
        rt->flush->drain();
    }
}
/* The two halves, for code that makes several changes durable with one
 * fence (tx.c). */
static inline void pm_flush(struct pm_rt *rt, const void *addr, size_t len)
{
    if (PM_UNLIKELY(rt->flush != NULL))
        rt->flush->flush(addr, len);
}
static inline void pm_drain(struct pm_rt *rt)
{
    if (PM_UNLIKELY(rt->flush != NULL))
        rt->flush->drain();
}

/* ---- sizeclass.c ---- */
extern const uint8_t pm_class_of_granule[65];
/* The class of a size in 1..PM_MAX_SMALL: a table up to 1 KiB, then four
 * classes per doubling. */
static inline uint32_t pm_size_class(size_t size)
{
    if (size <= 1024)
        return pm_class_of_granule[(size + 15) >> 4];
    uint64_t s = (uint64_t)size - 1;
    uint32_t k = 63 - (uint32_t)__builtin_clzll(s);
    return 8 + (k - 7) * 4 + (uint32_t)((s >> (k - 2)) & 3);
}
uint32_t pm_class_size(uint32_t cls);
/* ceil(2^40 / b): (x * recip) >> 40 is x / b for every offset x of a
 * superblock (pm_class.recip, pm_tcache.recip) */
static inline uint64_t pm_class_recip(uint32_t b)
{
    return ((UINT64_C(1) << 40) + b - 1) / b;
}
/* The inverse modulo 2^64 of b's odd part (Newton's iteration: each step
 * doubles the correct low bits, from 3 for x = d, since d * d == 1 mod 8),
 * for pm_block_index. */
static inline uint64_t pm_class_inv(uint32_t b)
{
    uint64_t d = b >> __builtin_ctz(b), x = d;
    for (int i = 0; i < 5; i++)
        x *= 2 - d * x;
    return x;
}
/* x / b where b (= odd d << shift, inv = pm_class_inv(b)) divides x, and
 * otherwise a number above UINT64_MAX / b: x * inv is then x / b << shift
 * exactly (d * inv == 1 mod 2^64), which the rotation brings back; for any
 * other x the result is past every multiple's quotient (the divisibility
 * test of Granlund and Montgomery, 1994).  So one compare with a bound
 * below UINT64_MAX / b both checks that x is a block's start and bounds
 * its index: one multiply, where a reciprocal and a product back took two. */
static inline uint64_t pm_block_index(uint64_t x, uint64_t inv, uint32_t shift)
{
    uint64_t q = x * inv;
    return q >> shift | q << (-shift & 63);
}
void pm_classes_init(struct pm_rt *rt);
bool pm_sb_geometry(const struct pm_rt *rt, uint32_t c, uint32_t n_pages,
                    uint32_t *n_blocks, uint32_t *data_start);

/* ---- pages.c ---- */
int pg_init(struct pm_rt *rt);
uint64_t pg_alloc(struct pm_rt *rt, uint64_t n, uint64_t align_pages);
uint64_t pg_alloc_flex(struct pm_rt *rt, uint64_t min, uint64_t max,
                       uint64_t *n);
bool pg_back(struct pm_rt *rt, uint64_t first, uint64_t n);
void pg_release_large(struct pm_rt *rt, uint64_t first, uint64_t n);
/* The thread's own cache of freed page runs (pages.c): runs whose blocks
 * are free in the file but whose pages stay claimed (rt->used) for the
 * thread's next large blocks, so that they skip the shared search. */
uint64_t pg_cache_take(struct pm_trec *rec, uint64_t min, uint64_t max, uint64_t *n);
uint64_t pg_cache_take_at(struct pm_trec *rec, uint64_t first, uint64_t max);
uint64_t pg_cache_next(struct pm_trec *rec, uint64_t p, uint64_t end);
void pg_release_cached(struct pm_rt *rt, struct pm_trec *rec, uint64_t first, uint64_t n);
void pg_cache_drop(struct pm_rt *rt, struct pm_trec *rec);
bool pg_cache_reclaim(struct pm_rt *rt);
void pg_cache_forget(struct pm_rt *rt);
bool pg_claim_at(struct pm_rt *rt, uint64_t first, uint64_t n);
void pg_release(struct pm_rt *rt, uint64_t first, uint64_t n);
void pg_mark_used(struct pm_rt *rt, uint64_t first, uint64_t n);
bool pg_bit(const pm_atomic_u64 *bits, uint64_t page);
void pg_bit_set(struct pm_rt *rt, pm_atomic_u64 *bits, uint64_t page);
void pg_bit_clear(struct pm_rt *rt, pm_atomic_u64 *bits, uint64_t page);
uint64_t pg_next_set(const pm_atomic_u64 *bits, uint64_t from, uint64_t limit);
void pm_holes_announce(struct pm_rt *rt, uint64_t how);
uint64_t pg_prev_set(const pm_atomic_u64 *bits, uint64_t at);  /* <= at */
uint64_t pg_run_end(struct pm_rt *rt, uint64_t first);  /* last page */
uint64_t pm_hwm_pages(struct pm_rt *rt);
#define PG_NONE UINT64_MAX

/* ---- thread.c ---- */
struct pm_trec *pm_thread_attach(allocator_space_t *space, struct pm_rt **rtp);
void pm_thread_release(struct pm_rt *rt, struct pm_trec *rec);
void pm_thread_forget_after_fork(void);        /* a child's: a key being made */
void pm_threads_rt_close(struct pm_rt *rt);
struct pm_tls_cur {
    const allocator_space_t *space;
    struct pm_rt *rt;
    struct pm_trec *rec;
    uint64_t epoch;
};
extern _Thread_local struct pm_tls_cur pm_tls PM_TLS_IE;

/* The calling thread's record in space, attaching on first use; NULL with
 * errno when the space is not open here or cannot allocate. */
static inline struct pm_trec *pm_thread_rec(allocator_space_t *space,
                                            struct pm_rt **rtp)
{
    if (PM_LIKELY(pm_tls.space == space &&
                  pm_tls.epoch == pm_load_relaxed(&pm_close_epoch))) {
        *rtp = pm_tls.rt;
        return pm_tls.rec;
    }
    return pm_thread_attach(space, rtp);
}

/* Owner operations are bracketed by these; see superblock.c (revocation).
 * The busy flag says what the operation may touch of the thread's own
 * superblocks, for a thief (superblock.c, revoke_others): PM_BUSY_ANY any
 * of them; PM_BUSY_NONE none (it writes the bytes of a block it holds,
 * nothing of a superblock's state); PM_BUSY_CLASS(c) those of size class
 * c only (the slow halves of a small malloc and of an owner's free, which
 * work on one class's books: a thread stopped inside one keeps that
 * class's superblocks); otherwise the address of an allocation-bitmap
 * word, and then nothing but the superblock holding it (the fast paths: a
 * thread stopped inside one keeps that superblock alone).  An operation
 * that goes on past what its flag names raises PM_BUSY_ANY (or, from a
 * word, its class) and reads its revocation counter again before it
 * touches anything more (pm_op_widen, pm_op_widen_to), as the begin does.
 * A word's address is a multiple of 8, so the low three bits tell the
 * kinds apart. */
#define PM_BUSY_ANY ((uintptr_t)1)
#define PM_BUSY_NONE ((uintptr_t)2)
#define PM_BUSY_CLASS_TAG ((uintptr_t)3)
#define PM_BUSY_CLASS(c) ((uintptr_t)(c) << 3 | PM_BUSY_CLASS_TAG)
static inline bool pm_busy_is_class(uintptr_t b)
{
    return (b & 7u) == PM_BUSY_CLASS_TAG;
}
static inline uint32_t pm_busy_class(uintptr_t b)
{
    return (uint32_t)(b >> 3);
}
static inline void pm_op_begin_as(struct pm_trec *rec, uintptr_t what)
{
    pm_store_relaxed(&rec->busy, what);
    pm_compiler_fence();   /* ordered against a thief by membarrier */
}
static inline void pm_op_begin(struct pm_trec *rec)
{
    pm_op_begin_as(rec, PM_BUSY_ANY);
}
/* The fast paths': the operation touches the superblock of word w only. */
static inline void pm_op_begin_word(struct pm_trec *rec, const pm_atomic_u64 *w)
{
    pm_op_begin_as(rec, (uintptr_t)w);
}
/* Inside an operation begun with a narrower flag: from here on it may
 * touch any of the thread's superblocks.  The caller reads its revocation
 * counter after this, before it touches one (a thief that read the
 * narrower flag fenced before this store, so that read sees its bump). */
static inline void pm_op_widen(struct pm_trec *rec)
{
    pm_op_begin_as(rec, PM_BUSY_ANY);
}
/* The same to a flag that names more than the one before (a word's class,
 * or PM_BUSY_ANY): nothing is ever narrowed inside an operation. */
static inline void pm_op_widen_to(struct pm_trec *rec, uintptr_t what)
{
    pm_op_begin_as(rec, what);
}
static inline void pm_op_end(struct pm_trec *rec)
{
    pm_store_release(&rec->busy, (uintptr_t)0);  /* thief reads it with acquire */
}

/* The space of the open automatic transaction, if any (tx.c; one per
 * process).  Every operation of the slow paths, and every remote free,
 * looks at it once its busy flag is up: a call of another thread waits
 * there, outside its operation, until that transaction ends (reported
 * once through the error hook).  The owner's begin publishes it and then
 * fences every thread (membarrier) before it looks at their busy flags,
 * so a thread either shows busy to the begin (which refuses) or sees the
 * space here.  The fast paths need no look: the begin revokes every
 * superblock another thread owns, so their next operation takes the slow
 * path. */
extern struct pm_rt *_Atomic pm_auto_rt;
void pm_auto_wait(struct pm_rt *rt, struct pm_trec *rec);
/* Inside an operation: another thread's automatic transaction on rt makes
 * the caller wait for its end (the operation is left and taken again). */
static inline void pm_auto_gate(struct pm_rt *rt, struct pm_trec *rec)
{
    if (PM_UNLIKELY(pm_load_relaxed(&pm_auto_rt) == rt))
        pm_auto_wait(rt, rec);
}
static inline void pm_op_enter(struct pm_rt *rt, struct pm_trec *rec)
{
    pm_op_begin(rec);
    pm_auto_gate(rt, rec);
}
/* The same for an operation that names less (PM_BUSY_CLASS, PM_BUSY_NONE):
 * the gate takes the flag up again as it was. */
static inline void pm_op_enter_as(struct pm_rt *rt, struct pm_trec *rec, uintptr_t what)
{
    pm_op_begin_as(rec, what);
    pm_auto_gate(rt, rec);
}
/* Lookups made before an operation (free's general way, the publishing
 * calls' location check, usable_size, root_publish's block check): the
 * abort of another thread's automatic transaction rebuilds the page map
 * and the marks from the file, and a lookup meanwhile can miss a live
 * block (a helper's hunt: frees refused as foreign pointers, the blocks
 * leaked; usable sizes of 0; alloc_into's location refused).  Such a
 * call first waits for that transaction's end (pm_auto_settle, which
 * returns the count of rebuilds), and a lookup that failed asks
 * pm_auto_moved whether an automatic transaction is open or a rebuild ran
 * since, and then settles and looks again. */
void pm_auto_wait_outside(struct pm_rt *rt);
bool pm_auto_moved(struct pm_rt *rt, uint64_t seen);
static inline uint64_t pm_auto_settle(struct pm_rt *rt)
{
    if (PM_UNLIKELY(pm_load_relaxed(&pm_auto_rt) == rt))
        pm_auto_wait_outside(rt);
    return pm_load_acquire(&rt->auto_resets);
}

/* ---- superblock.c ---- */
static inline struct pm_sb_header *sb_header(struct pm_rt *rt, uint32_t first)
{
    return (struct pm_sb_header *)(rt->data + ((uint64_t)first << rt->page_shift));
}
/* A writer's open reads the superblock headers into a copy (recover.c);
 * NULL when it has none of first (none made, dropped, or forgotten) */
struct pm_sb_header *pm_snap_header(struct pm_rt *rt, uint32_t first);
void pm_snap_drop(struct pm_rt *rt);
/* recovery is about to write [at, at + len) of the mapping: the copies it
 * may overlap are forgotten (no-op without a copy) */
void pm_snap_forget(struct pm_rt *rt, const void *at, size_t len);
/* A superblock's header to read during an open: the open's copy when it
 * has one of it (recover.c), else the mapping.  Only the rebuild writes the
 * copy (its repairs, which it then writes to the file: repair_words);
 * every other write recovery makes forgets the copies it overlaps. */
static inline struct pm_sb_header *sb_header_seen(struct pm_rt *rt, uint32_t first)
{
    if (PM_UNLIKELY(rt->snap != NULL)) {
        struct pm_sb_header *h = pm_snap_header(rt, first);
        if (h != NULL)
            return h;
    }
    return sb_header(rt, first);
}
/* Valid bits of the last bitmap word of a superblock. */
static inline uint64_t sb_last_mask(const struct pm_sb_header *h)
{
    return (h->n_blocks % 64) ? (UINT64_C(1) << (h->n_blocks % 64)) - 1 : ~UINT64_C(0);
}
/* The blocks of bitmap word w that exist: sb_last_mask for the last word,
 * every bit before it.  Without a branch: in the loops over a bitmap's
 * words one taken only at the last word was mispredicted there, each time
 * (a switch of superblocks in larson meets it once or twice). */
static inline uint64_t sb_word_valid(const struct pm_sb_header *h, uint32_t w)
{
    return ~UINT64_C(0) >> ((uint32_t)(w + 1u == h->n_words) * ((0u - h->n_blocks) & 63u));
}
/* Inside an operation, with no revocation seen since busy went up: moves
 * t's current word to the next word of its superblock that the free-word
 * hint names and that has a free block (the current word again, when a
 * free noted it); false when t has no superblock or the hint names no
 * such word (t->mask and t->freemap are then 0). */
bool sb_next_word(struct pm_rt *rt, struct pm_tcache *t);
void *sb_refill_alloc(struct pm_rt *rt, struct pm_trec *rec, uint32_t cls,
                      size_t align);
/* Inside an operation: a free block of class cls taken out of the cache
 * but not marked allocated (publish.c commits it after its lane record). */
void *sb_reserve(struct pm_rt *rt, struct pm_trec *rec, uint32_t cls,
                 pm_atomic_u64 **aword, uint64_t *bit, uint32_t *bsize);
void sb_free_local(struct pm_rt *rt, struct pm_trec *rec, uint32_t first,
                   struct pm_sb_header *h, uint32_t idx);
/* n_words: the header's, blk: block idx's address (the caller may have
 * both without reading the header's line) */
void sb_free_remote(struct pm_rt *rt, struct pm_trec *rec, uint32_t first,
                    struct pm_sb_header *h, uint32_t idx, uint32_t n_words,
                    const void *blk);
/* An owner's free (or a re-adoption, or a remote free after all), outside
 * any operation; cls: the block's class as the caller's lookup found it,
 * the only class's superblocks the operation then names for a thief
 * (PM_BUSY_CLASS; judged again inside it against the control word), or
 * UINT32_MAX for any. */
void pm_free_small(struct pm_rt *rt, struct pm_trec *rec, uint32_t first,
                   struct pm_sb_header *h, uint32_t idx, uint32_t cls);
/* Inside an operation whose flag names less than every superblock of the
 * thread (PM_BUSY_CLASS, PM_BUSY_NONE): from here on it may touch any of
 * them, so the flag says so first and the revocation counter is read
 * after it (pm_op_widen).  True when a revocation was seen and the books
 * synced (keep: the class whose current superblock stays under pressure,
 * UINT32_MAX none): the caller looks at them again.  Nothing when the
 * flag is PM_BUSY_ANY already. */
bool sb_widen_any(struct pm_rt *rt, struct pm_trec *rec, uint32_t keep);
void sb_thread_exit(struct pm_rt *rt, struct pm_trec *rec);
/* Releases the superblocks rec emptied and kept (its spares), inside an
 * operation: before the space grows.  True if it had any. */
bool sb_release_spares(struct pm_rt *rt, struct pm_trec *rec);
bool sb_readopt(struct pm_rt *rt, struct pm_trec *rec, uint32_t first,
                uint32_t cls);
void sb_after_local_free(struct pm_rt *rt, struct pm_trec *rec, uint32_t first,
                         struct pm_sb_header *h, uint32_t idx);
void sb_list_if_orphan(struct pm_rt *rt, uint32_t first);
bool sb_owner_sync(struct pm_rt *rt, struct pm_trec *rec);
int sb_locate(struct pm_rt *rt, const void *ptr, uint32_t *first,
              struct pm_sb_header **hp, uint32_t *idx);
void sb_adopt_rebuilt(struct pm_rt *rt, uint32_t first, const struct pm_sb_header *h,
                      uint32_t n_used);
uint32_t sb_scavenge(struct pm_rt *rt, struct pm_trec *rec, uint32_t *reowned);
/* The last step before a malloc reports ENOMEM (superblock.c): a scavenge,
 * and again for a moment while other threads' calls keep superblocks. */
struct sb_starve {
    uint32_t round;
    bool pressing;                /* counted in rt->pressure */
    uint64_t until;               /* os_mono_ns() */
};
bool sb_starving(struct pm_rt *rt, struct pm_trec *rec, uint32_t keep, struct sb_starve *st);
void sb_starve_end(struct pm_rt *rt, struct sb_starve *st);
/* Takes every superblock other threads own (tx.c: an automatic
 * transaction); -EBUSY if one was inside a call and kept it. */
int sb_revoke_all(struct pm_rt *rt, struct pm_trec *rec);
/* Whether a thread other than rec's owns (or is losing) a superblock. */
bool sb_others_own(struct pm_rt *rt, struct pm_trec *rec);
/* Forgets what rec's caches hold (after the heap was rebuilt under it). */
void sb_forget_thread(struct pm_trec *rec);
bool sb_header_valid(struct pm_rt *rt, const struct pm_sb_header *h,
                     uint64_t first);

/* ---- large.c ---- */
/* Inside an operation.  lg_reserve claims pages only; lg_commit makes them
 * a live run. */
uint64_t lg_reserve(struct pm_rt *rt, struct pm_trec *rec, size_t size,
                    size_t align, uint64_t *n_pages);
void *lg_commit(struct pm_rt *rt, uint64_t first, uint64_t n);
void *lg_alloc(struct pm_rt *rt, struct pm_trec *rec, size_t size,
               size_t align);
int lg_free(struct pm_rt *rt, struct pm_trec *rec, void *ptr);
size_t lg_usable(struct pm_rt *rt, const void *ptr);
bool lg_resize_in_place(struct pm_rt *rt, struct pm_trec *rec, void *ptr, size_t new_size);
bool lg_is_block(struct pm_rt *rt, const void *ptr, uint64_t *first,
                 uint64_t *last);

/* ---- alloc.c ---- */
void *pm_alloc(struct pm_rt *rt, struct pm_trec *rec, size_t size,
               size_t align);
size_t pm_usable(struct pm_rt *rt, const void *ptr);
/* pm_usable for a lookup made before an operation: another thread's
 * automatic transaction waited for first, and a miss looked up again
 * after an abort's rebuild (pm_auto_settle, pm_auto_moved) */
size_t pm_usable_settled(struct pm_rt *rt, const void *ptr);

/* ---- free.c ---- */
int pm_free_block(struct pm_rt *rt, struct pm_trec *rec, void *ptr);   /* 0, or the misuse reported */


/* ---- publish.c ---- */
struct pm_resv {                  /* a block reserved, not yet committed */
    void *blk;
    uint64_t usable;              /* its usable bytes */
    bool large;
    pm_atomic_u64 *aword;         /* small: its allocation word and bit */
    uint64_t bit;
    uint64_t first, n;            /* large: its pages */
};
struct pm_pubfree {               /* a block being freed under a lane */
    bool large, local;
    uint32_t s, idx;
    struct pm_sb_header *h;
    uint64_t first, last;
};
void *pub_reserve(struct pm_rt *rt, struct pm_trec *rec, size_t size,
                  struct pm_resv *rv);
void pub_commit(struct pm_rt *rt, struct pm_resv *rv);
int pub_free_prepare(struct pm_rt *rt, struct pm_trec *rec, void *blk,
                     struct pm_pubfree *pf);
/* A preparation in two halves: where the block is (small: s, h, idx;
 * large: first, last; 0 or PERSISTENT_E_*), then, while it cannot have
 * moved (live and marked: tx.c), its preparation as a held free (see
 * publish.c). */
int pub_free_locate(struct pm_rt *rt, const void *blk, struct pm_pubfree *pf);
/* Whether a located block is live (a run located is: its start bit). */
bool pub_free_live(const struct pm_pubfree *pf);
int pub_free_prepare_held_at(struct pm_rt *rt, struct pm_trec *rec, struct pm_pubfree *pf);
/* The same, but the owner's own block is freed as the owner frees it (its
 * allocation bit; reusable after pub_free_finish) */
int pub_free_prepare_at(struct pm_rt *rt, struct pm_trec *rec, struct pm_pubfree *pf);
void pub_free_do(struct pm_rt *rt, struct pm_pubfree *pf);
/* As pub_free_do, written back but not fenced: the caller fences. */
void pub_free_flush(struct pm_rt *rt, struct pm_pubfree *pf);
void pub_free_abandon(struct pm_rt *rt, struct pm_trec *rec,
                      struct pm_pubfree *pf);
void pub_free_finish(struct pm_rt *rt, struct pm_trec *rec,
                     struct pm_pubfree *pf);
void *pub_root_create(struct pm_rt *rt, struct pm_trec *rec, pm_atomic_u64 *val,
                      size_t size, uint64_t *winner);
int pub_root_remove(struct pm_rt *rt, struct pm_trec *rec, pm_atomic_u64 *val);
/* A block of size bytes filled by init(blk, arg) and linked at *link (a
 * word 0 until then) through the thread's lane, inside an operation: the
 * link's value afterwards (this block's offset, or the one another thread
 * linked first), 0 when there is no room (errno ENOMEM). */
uint64_t pub_table_create(struct pm_rt *rt, struct pm_trec *rec, pm_atomic_u64 *link,
                          size_t size, void (*init)(void *, void *), void *arg);
/* A run of size bytes aligned to align, filled by init, made the
 * transaction log its lane l names (l->tx_off) through l itself; NULL
 * (errno ENOMEM) when there is no room. */
void *pub_txlog_create(struct pm_rt *rt, struct pm_trec *rec, struct pm_lane *l,
                       size_t size, size_t align, void (*init)(struct pm_rt *, void *));
int pm_lanes_recover(struct pm_rt *rt);
struct pm_lane *pub_lane(struct pm_rt *rt, struct pm_trec *rec);
/* Recovery: the block at boff made live or free from the persistent bits
 * alone, idempotently (publish.c). */
void pub_ensure(struct pm_rt *rt, uint64_t boff, bool live);
/* Every lane: i from 0 while it returns one (publish.c). */
struct pm_lane *pub_lane_at(struct pm_rt *rt, uint32_t i);
/* The chain of lane tables found again from the file, forgetting what
 * was found before (an open only: page images may have been put back) */
void pub_lanes_rescan(struct pm_rt *rt);
int pm_lanes_in_flight(struct pm_rt *rt);

/* ---- verify.c ---- */
struct pm_run {
    uint64_t first, last;
    /* NULL for a large run; else a copy of the superblock's header and
     * bitmaps, taken and validated by the walk (pm_walk_runs): what the
     * callbacks read, all of one moment, while a view's file may change
     * under the walk (a review: stats read the class again from the
     * mapping, changed meanwhile, and wrote past its table) */
    const struct pm_sb_header *h;
    char *at;                     /* where the run is mapped */
};
#define PM_LANE_CHUNK 64u         /* lanes per overflow lane table */
#define PM_LANE_MAX_CHUNKS 64u    /* overflow lane tables at most */
/* the bytes of an overflow lane table: its head and its lanes */
#define PM_LANE_TABLE_BYTES (sizeof(struct pm_lane_table) + PM_LANE_CHUNK * sizeof(struct pm_lane))
static inline uint64_t pm_data_limit(struct pm_rt *rt)
{
    return rt->data_off + (pm_load_acquire(&rt->n_pages) << rt->page_shift);
}
/* [off, off + len) lies in the pages the file holds (inline: a transaction
 * asks it for every snapshot) */
static inline bool pm_in_data(struct pm_rt *rt, uint64_t off, uint64_t len)
{
    uint64_t limit = pm_data_limit(rt);
    return off >= rt->data_off && off <= limit && len <= limit - off;
}
/* *hc: the validated copy of the header's fields (use those, not *h's:
 * another process may change the mapping under a view). */
bool pm_block_place(struct pm_rt *rt, uint64_t off, struct pm_sb_header **h,
                    struct pm_sb_header *hc, uint32_t *idx);
uint64_t pm_block_live(struct pm_rt *rt, uint64_t off);
uint64_t pm_root_next_cap(uint64_t cap);
struct pm_root_table *pm_root_table_at(struct pm_rt *rt, uint64_t off, uint64_t cap);
/* The overflow lane table at off: a live block of its size, or one
 * linked whose block is not committed yet (*pending, if not NULL: its
 * place free, a free block of a superblock or pages no run holds;
 * publish.c chunk_add_unlaned), which recovery commits. */
struct pm_lane_table *pm_lane_table_at(struct pm_rt *rt, uint64_t off, bool *pending);
bool pm_dest_ok(struct pm_rt *rt, uint64_t off);
/* What lane record l with operation op may name: a place pm_dest_ok
 * accepts, or, for an allocation, l's own tx_off. */
bool pm_lane_dest_ok(struct pm_rt *rt, const struct pm_lane *l, uint64_t op);
/* persistent_check_progress's callback, for the calling thread's walks */
extern _Thread_local void (*pm_walk_progress)(uint64_t done, uint64_t total, void *arg);
extern _Thread_local void *pm_walk_progress_arg;
int pm_walk_runs(struct pm_rt *rt,
                 int (*fn)(struct pm_rt *, const struct pm_run *, void *),
                 void *arg, const char **why, uint64_t *where);
int pm_verify(struct pm_rt *rt, struct persistent_check_report *rep, bool counts);
bool pm_image_sets_tail(const struct pm_rt *rt, uint64_t off, const void *img, uint64_t len);

/* A small block's superblock, class and index, from its page map entry
 * alone (the header's line is not read); false for anything else (a large
 * block or not a block start: the general path sorts those out). */
static inline bool pm_locate_small(struct pm_rt *rt, const struct pm_trec *rec,
                                   const void *ptr, uint32_t *sp, struct pm_sb_header **hp,
                                   uint32_t *cp, uint32_t *ip, uint32_t *np)
{
    /* the page map covers the maximum, and a page past the space's end is
     * in no superblock (an entry of 0: n_pages never decreases, entries
     * are written by a carve below it, and a release or a reset writes 0),
     * so no load of n_pages */
    uint64_t off = (uint64_t)((uintptr_t)ptr - (uintptr_t)rt->data);
    if (PM_UNLIKELY(off >= rt->max_bytes))
        return false;
    uint64_t e = pm_load_relaxed(&rt->pagemap[off >> rt->page_shift]);
    uint32_t f1 = pm_pagemap_first1(e), g = pm_pagemap_geom(e);
    if (PM_UNLIKELY(f1 == 0))
        return false;
    /* c < rt->n_small: the entries are the library's own, written by a
     * carve or by recovery from a header sb_header_valid passed; the
     * class's inverse and shift are in the thread's cache for it, whose
     * line the caller reads next (not rt->cls[c]: one line and an
     * address computation fewer) */
    uint32_t c = pm_geom_cls(g), n = pm_geom_n_blocks(g);
    const struct pm_tcache *k = &rec->cls[c];
    uint64_t sb_off = (uint64_t)(f1 - 1) << rt->page_shift;
    uint64_t x = off - sb_off - pm_geom_data_start(g);
    uint64_t idx = pm_block_index(x, k->inv, k->bshift);
    if (PM_UNLIKELY(idx >= n))          /* n <= 4096: also a block's start */
        return false;
    *sp = f1 - 1;
    *hp = (struct pm_sb_header *)(rt->data + sb_off);
    *cp = c;
    *ip = (uint32_t)idx;
    *np = n;
    return true;
}

/* ---- roots.c ---- */
/* Marks: roots' blocks, the library's own, and blocks of open
 * transactions (tx.c).  Inline: an update transaction makes five of these
 * calls. */
static inline uint32_t pm_run_first(struct pm_rt *rt, uint64_t off)
{
    uint64_t page = (off - rt->data_off) >> rt->page_shift;
    uint32_t f1 = pm_pagemap_first1(pm_load_acquire(&rt->pagemap[page]));
    return f1 ? f1 - 1 : (uint32_t)page;
}

/* Marks the block at off (live, in the pages; run: its run's first page)
 * in bits; false if it was marked already.  A caller that knows the run
 * passes it (no page map lookup); the count is taken back at the same run
 * (pm_unmark_at), wherever the page map says the block is by then. */
static inline bool pm_mark_at(struct pm_rt *rt, pm_atomic_u64 *bits, uint64_t off, uint32_t run)
{
    uint64_t g = (off - rt->data_off) >> 4;
    uint64_t bit = UINT64_C(1) << (g & 63);
    if (pm_fetch_or_seq_cst(&bits[g >> 6], bit) & bit)
        return false;
    /* sequentially consistent, as pm_hold: a transaction's free and
     * another's snapshot of the block each set their bit, then look at
     * the other's (tx.c), and of two racing one sees the other */
    pm_fetch_add_seq_cst(&rt->ctl[run].marks, (uint16_t)1);
    return true;
}
static inline bool pm_mark(struct pm_rt *rt, pm_atomic_u64 *bits, uint64_t off)
{
    return pm_mark_at(rt, bits, off, pm_run_first(rt, off));
}

static inline void pm_unmark_at(struct pm_rt *rt, pm_atomic_u64 *bits, uint64_t off, uint32_t run)
{
    uint64_t g = (off - rt->data_off) >> 4;
    uint64_t bit = UINT64_C(1) << (g & 63);
    if (pm_fetch_and_acq_rel(&bits[g >> 6], ~bit) & bit)
        pm_fetch_sub_acq_rel(&rt->ctl[run].marks, (uint16_t)1);
}
static inline void pm_unmark(struct pm_rt *rt, pm_atomic_u64 *bits, uint64_t off)
{
    pm_unmark_at(rt, bits, off, pm_run_first(rt, off));
}

/* A transaction's hold on the block at off (live, in the pages), which
 * plain frees and other transactions' frees refuse until it is let go.
 * The first hold is the block's bit in rt->snapmark; a block held already
 * (by another transaction: each holds a block once) counts the hold in
 * rt->cohold instead.  The holders of a block are always its bit plus its
 * count there, whatever order they come and go in: a hold sets the bit or,
 * finding it set, adds one to the count; pm_unhold takes one off the
 * count or, finding none, clears the bit.  A hold that counts just after
 * the bit's holder found no count and before it clears the bit leaves the
 * bit clear and a count of one: so "held" is never the bit alone (how it
 * is read: pm_snap_holders).  (Until 2026-12-06 there was only
 * the bit: the first transaction to end let the block go while the second
 * still held it.)  Not counted in the run's control word: a count there
 * was a line that threads snapshotting blocks of one run (a table
 * allocated by one thread, say) fought over at every begin and end; the
 * run's PM_MARKS_HOLD flag is set once instead, read first so that a run
 * already flagged is not written.  A free into a flagged run looks at the
 * block's hold (free.c), until the run is carved again (pm_marks_carved).
 * False when the block is held already and the table has no room for
 * the count in the block's window (nothing changed then). */
static inline uint64_t pm_cohold_key(struct pm_rt *rt, uint64_t off)
{
    return (((off - rt->data_off) >> 4) + 1) << PM_COHOLD_BITS;
}
static inline uint32_t pm_cohold_home(uint64_t key)
{
    return (uint32_t)((key * UINT64_C(0x9e3779b97f4a7c15)) >> 54) % PM_COHOLD_SLOTS;
}
bool pm_cohold_add(struct pm_rt *rt, uint64_t off);
bool pm_cohold_take(struct pm_rt *rt, uint64_t off);
uint64_t pm_cohold_count(struct pm_rt *rt, uint64_t off);
static inline bool pm_hold_at(struct pm_rt *rt, uint64_t off, uint32_t run)
{
    uint64_t g = (off - rt->data_off) >> 4;
    uint64_t bit = UINT64_C(1) << (g & 63);
    /* no room for a count: the bit again, which its holder may have let go
     * meanwhile */
    if ((pm_fetch_or_seq_cst(&rt->snapmark[g >> 6], bit) & bit) && !pm_cohold_add(rt, off) &&
        (pm_fetch_or_seq_cst(&rt->snapmark[g >> 6], bit) & bit))
        return false;
    pm_atomic_u16 *m = &rt->ctl[run].marks;
    if (!(pm_load_seq_cst(m) & PM_MARKS_HOLD))
        pm_fetch_or_seq_cst(m, (uint16_t)PM_MARKS_HOLD);
    return true;
}

/* A release by the bit alone: right whenever no count of any block was
 * there at some point since the hold (rt->n_cohold read 0), since a count
 * added after that is a hold that found the bit set, and stays counted. */
static inline void pm_unhold_bit(struct pm_rt *rt, uint64_t off)
{
    uint64_t g = (off - rt->data_off) >> 4;
    pm_fetch_and_seq_cst(&rt->snapmark[g >> 6], ~(UINT64_C(1) << (g & 63)));
}
static inline void pm_unhold(struct pm_rt *rt, uint64_t off)
{
    if (pm_load_seq_cst(&rt->n_cohold) != 0 && pm_cohold_take(rt, off))
        return;
    pm_unhold_bit(rt, off);
}

/* How many open transactions hold the block at off (in the pages).  With
 * no count anywhere (rt->n_cohold read 0, first) a hold in place is in the
 * bit, and stays there while it is in place: the bit is cleared only by a
 * release that finds no count, and a later hold finds it set and counts.
 * Else the bit, the counts, then the bit again: the loads are no snapshot,
 * and a hold may move from a count to the bit while they are made (with
 * the bit clear and a count, a third transaction's hold takes the bit and
 * its release takes the count), so a hold in place throughout is in one
 * of the two bits or in the counts (a review's model of every
 * interleaving of up to four holders).  Holds and releases racing with
 * the call may or may not be counted. */
static inline bool pm_snap_bit(struct pm_rt *rt, uint64_t off)
{
    uint64_t g = (off - rt->data_off) >> 4;
    return (pm_load_seq_cst(&rt->snapmark[g >> 6]) >> (g & 63)) & 1;
}
static inline uint64_t pm_snap_holders(struct pm_rt *rt, uint64_t off)
{
    if (pm_load_seq_cst(&rt->n_cohold) == 0)
        return pm_snap_bit(rt, off);
    bool b = pm_snap_bit(rt, off);
    uint64_t c = pm_cohold_count(rt, off);
    return c + (pm_snap_bit(rt, off) | b);
}
/* Whether one does. */
static inline bool pm_snap_held_in(struct pm_rt *rt, uint64_t off)
{
    if (pm_load_seq_cst(&rt->n_cohold) == 0)
        return pm_snap_bit(rt, off);
    return pm_snap_bit(rt, off) || pm_cohold_count(rt, off) != 0 || pm_snap_bit(rt, off);
}

/* A run carved anew (no live block, so no hold): its flag goes. */
static inline void pm_marks_carved(struct pm_sbctl *ctl)
{
    if (pm_load_relaxed(&ctl->marks) & PM_MARKS_HOLD)
        pm_fetch_and_acq_rel(&ctl->marks, (uint16_t)~PM_MARKS_HOLD);
}
bool pm_marked(struct pm_rt *rt, pm_atomic_u64 *bits, uint64_t off);
bool pm_snap_held(struct pm_rt *rt, uint64_t off);
static inline bool pm_root_mark(struct pm_rt *rt, uint64_t off)
{
    return pm_mark(rt, rt->rootmark, off);
}
static inline void pm_root_unmark(struct pm_rt *rt, uint64_t off)
{
    pm_unmark(rt, rt->rootmark, off);
}
static inline bool pm_root_block(struct pm_rt *rt, uint64_t off)
{
    return pm_marked(rt, rt->rootmark, off);
}
/* The library's own blocks (kept for good once made): marked when made
 * and at every writer's open; a call given one (a stale pointer to a
 * block whose pages now hold one) reports PERSISTENT_E_BAD_POINTER. */
static inline void pm_own_mark(struct pm_rt *rt, uint64_t off)
{
    (void)pm_mark(rt, rt->ownmark, off);
}
/* off: a block's start, in the pages (every caller has located the block
 * first), so no range check: a bit test inline, not pm_marked's call (two
 * of them in each update transaction, about 40 instructions each) */
static inline bool pm_own_block(struct pm_rt *rt, uint64_t off)
{
    uint64_t g = (off - rt->data_off) >> 4;
    return rt->ownmark != NULL && (pm_load_acquire(&rt->ownmark[g >> 6]) >> (g & 63)) & 1;
}
/* Open: roots' blocks and the library's own marked (publish.c marks the
 * lane tables and the logs: pub_own_marks). */
void pm_root_marks_rebuild(struct pm_rt *rt);
void pub_own_marks(struct pm_rt *rt);
/* Why a free of the block at off must be refused: PERSISTENT_E_ROOT_BLOCK
 * (a root's), PERSISTENT_E_TX_BLOCK (an open transaction's), else 0.
 * first: its run's first page, when the caller has it (cheap then unless
 * the run holds a mark), or UINT32_MAX. */
int pm_block_held_slow(struct pm_rt *rt, uint64_t off);
static inline int pm_block_held(struct pm_rt *rt, uint32_t first, uint64_t off)
{
    if (first != UINT32_MAX && PM_LIKELY(pm_load_relaxed(&rt->ctl[first].marks) == 0))
        return 0;
    return pm_block_held_slow(rt, off);
}

/* ---- tx.c ---- */
struct pm_tx;
struct pm_txit {                  /* a walk of one transaction's entries */
    uint64_t gen, key, at, end, budget;
    bool loose;                   /* JUMPs only inside the pages (tx.c:
                                     pm_tx_restore_pages), not in no run */
    bool track;                   /* keep the segments walked (pm_txit_clear;
                                     pm_txit_done frees them) */
    bool oom;
    uint64_t log_off, log_size;   /* the log's block */
    uint64_t *segmap;             /* the pages of the segments walked, a
                                     bit each (made at the first JUMP) */
    uint64_t data_off, page_shift, n_pages;
};
bool pm_txlog_head_ok(struct pm_rt *rt, uint64_t off);
/* The entries of generation gen in the log (its stream). */
void pm_txit_start(struct pm_rt *rt, const struct pm_txlog *lg, uint64_t gen,
                   struct pm_txit *it);
const struct pm_txent *pm_txit_next(struct pm_rt *rt, struct pm_txit *it);
/* Whether [off, off + len) lies clear of the log's block and of every
 * segment a tracking walk went on in so far (the storage of the entries
 * before the last one it gave). */
bool pm_txit_clear(const struct pm_txit *it, uint64_t off, uint64_t len);
void pm_txit_done(struct pm_txit *it);
int pm_tx_recover(struct pm_rt *rt);          /* a writer's open, first */
void pm_tx_salt_logs(struct pm_rt *rt);       /* and after its recovery */
int pm_tx_restore_pages(struct pm_rt *rt);    /* before it verifies */
bool pm_tx_rollback_pending(struct pm_rt *rt); /* a log says ACTIVE */
/* persistent_check of a view: the heap judged as a writer's open judges
 * it, after the rollback it would do (recover.c); 0 when there is none to
 * do (*rep untouched), 1 when it leaves a consistent heap, or
 * PERSISTENT_E_CORRUPT (*rep the verdict either way), PM_JUDGE_REFUSED
 * when there is one but a writer has the space or waits for it (*rep
 * untouched), or an error */
#define PM_JUDGE_REFUSED 2
int pm_rollback_judge(struct pm_rt *rt, struct persistent_check_report *rep);
void pm_tx_thread_release(struct pm_rt *rt, struct pm_trec *rec);
/* An allocation of rec's that found no room (inside its operation): the
 * frees its last commit holds (PMEM) made reusable when it has no
 * transaction open; whether there were any. */
bool pm_tx_settle_own(struct pm_rt *rt, struct pm_trec *rec);
/* Whether another thread's automatic transaction is open on rt (not rec's
 * own): a thread exit then leaves its record to be handed back later. */
bool pm_tx_auto_other(struct pm_rt *rt, struct pm_trec *rec);
void pm_tx_close(struct pm_rt *rt);           /* close: volatile state */
void pm_tx_auto_close(struct pm_rt *rt);      /* close, first: an automatic one aborted */
void pm_tx_forget_after_fork(void);           /* a child's: the parent's automatic one */

/* ---- recover.c ---- */
int pm_engine_prepare(struct pm_rt *rt); /* volatile runtime, validation:
                                           writes nothing to the file */
int pm_engine_start(struct pm_rt *rt);   /* recovery and rebuild */
void pm_engine_reset(struct pm_rt *rt, struct pm_trec *rec);
void pm_engine_close(struct pm_rt *rt);

/* ---- crashsim.c (test support, inert unless armed) ---- */
#define PM_CRASH_NONE        0
#define PM_CRASH_KILL        1   /* SIGKILL at the chosen crash point */
#define PM_CRASH_POWER       2   /* ... and only flushed lines reach the file */
#define PM_CRASH_POWER_EVICT 3   /* ... plus a random subset of dirty lines */
void pm_crash_arm(uint64_t at, int mode, uint64_t seed);  /* at 0: count only */
uint64_t pm_crash_points(void);
uint64_t pm_crash_fences(void);   /* fences among the points */
bool pm_crash_armed(void);
int pm_crash_mode(void);
const struct pm_flush_ops *pm_crash_wrap(const struct pm_flush_ops *real);
void pm_crash_attach(char *base, uint64_t len, int fd);
void pm_crash_detach(char *base);
void pm_crash_resize(char *base, uint64_t len);
void pm_crash_synced(char *base);
void pm_crash_point(void);        /* a write durable on its own (a pwrite) */

/* ---- memcheck.c: Valgrind memcheck and AddressSanitizer see the
 * program's blocks ----
 * Built with -Dvalgrind=enabled (PM_VALGRIND: each call does nothing unless
 * the process runs under valgrind) or with ASan (PM_ASAN: poisoning); in
 * other builds they are empty inlines. */
#if defined(__SANITIZE_ADDRESS__)
#define PM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PM_ASAN 1
#endif
#endif
#if defined(PM_VALGRIND) || defined(PM_ASAN)
#define PM_VG_MARKS 1
/* Under valgrind, or in an ASan build: set by the first writer's open
 * (pm_vg_open); outside valgrind a -Dvalgrind build pays a load and a
 * branch per call. */
extern pm_atomic_u32 pm_vg_active;
void pm_vg_user_(struct pm_rt *rt, void *p, size_t n, bool zeroed);
void pm_vg_unuser_(struct pm_rt *rt, void *p);
void pm_vg_forget_(struct pm_rt *rt, void *p, size_t n);
void pm_vg_resized_(struct pm_rt *rt, void *p, size_t old_usable, size_t new_usable);
void pm_vg_internal_(void *p, size_t n);
void pm_vg_defined_(void *p, size_t n);
void pm_vg_quiet_(bool on);
void pm_vg_noaccess_(void *p, size_t n);
#define PM_VG_ON PM_UNLIKELY(pm_load_relaxed(&pm_vg_active) != 0)
#define PM_VG_ACTIVE PM_VG_ON           /* fast paths step aside */
/* handed out: n usable bytes (0: ask) */
static inline void pm_vg_user(struct pm_rt *rt, void *p, size_t n, bool zeroed)
{
    if (PM_VG_ON)
        pm_vg_user_(rt, p, n, zeroed);
}
/* the program frees it */
static inline void pm_vg_unuser(struct pm_rt *rt, void *p)
{
    if (PM_VG_ON)
        pm_vg_unuser_(rt, p);
}
/* the library frees it (n usable bytes; 0: ask, before the free) */
static inline void pm_vg_forget(struct pm_rt *rt, void *p, size_t n)
{
    if (PM_VG_ON)
        pm_vg_forget_(rt, p, n);
}
/* a large block resized in place: a shrink before its tail pages are
 * released (another thread may take them at once), a growth after */
static inline void pm_vg_resized(struct pm_rt *rt, void *p, size_t old_usable,
                                 size_t new_usable)
{
    if (PM_VG_ON)
        pm_vg_resized_(rt, p, old_usable, new_usable);
}
/* the library's own use from here on */
static inline void pm_vg_internal(void *p, size_t n)
{
    if (PM_VG_ON)
        pm_vg_internal_(p, n);
}
/* copied into a log: whatever it holds counts as written */
static inline void pm_vg_defined(void *p, size_t n)
{
    if (PM_VG_ON)
        pm_vg_defined_(p, n);
}
/* around whole-page copies */
static inline void pm_vg_quiet(bool on)
{
    if (PM_VG_ON)
        pm_vg_quiet_(on);
}
/* free from here on */
static inline void pm_vg_noaccess(void *p, size_t n)
{
    if (PM_VG_ON)
        pm_vg_noaccess_(p, n);
}
void pm_vg_close(struct pm_rt *rt);             /* leaks: at close */
void pm_vg_open(struct pm_rt *rt);              /* free memory: no access */
void pm_vg_unmap(struct pm_rt *rt);             /* all of it, before unmap */
void pm_vg_reset(struct pm_rt *rt);             /* an automatic transaction's
                                                   abort: nothing known */
void pm_copy_raw(void *dst, const void *src, size_t n);   /* unchecked */
#else
#define PM_VG_MARKS 0
#define PM_VG_ACTIVE 0
static inline void pm_vg_user(struct pm_rt *rt, void *p, size_t n, bool zeroed)
{
    (void)rt, (void)p, (void)n, (void)zeroed;
}
static inline void pm_vg_unuser(struct pm_rt *rt, void *p) { (void)rt, (void)p; }
static inline void pm_vg_forget(struct pm_rt *rt, void *p, size_t n)
{
    (void)rt, (void)p, (void)n;
}
static inline void pm_vg_resized(struct pm_rt *rt, void *p, size_t old_usable,
                                 size_t new_usable)
{
    (void)rt, (void)p, (void)old_usable, (void)new_usable;
}
static inline void pm_vg_internal(void *p, size_t n) { (void)p, (void)n; }
static inline void pm_vg_defined(void *p, size_t n) { (void)p, (void)n; }
static inline void pm_vg_quiet(bool on) { (void)on; }
static inline void pm_vg_close(struct pm_rt *rt) { (void)rt; }
static inline void pm_vg_open(struct pm_rt *rt) { (void)rt; }
static inline void pm_vg_noaccess(void *p, size_t n) { (void)p, (void)n; }
static inline void pm_vg_unmap(struct pm_rt *rt) { (void)rt; }
static inline void pm_vg_reset(struct pm_rt *rt) { (void)rt; }
static inline void pm_copy_raw(void *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
}
#endif

/* ---- hooks (test points) ---- */
enum pm_hook_point {
    PM_HOOK_SB_TAKEN = 1,         /* a superblock was just taken */
    PM_HOOK_REMOTE_PUSH,          /* remote free: bit set, not yet listed */
    PM_HOOK_LARGE_CLAIM,          /* pages claimed, run not yet committed */
    PM_HOOK_ROOT_INSERT,          /* root key claimed, block not published */
    PM_HOOK_GROW_TARGET,          /* growth: target chosen, nothing done */
    PM_HOOK_GROW_ALLOCATED,       /* growth: file extended, not committed */
    PM_HOOK_GROW_COMMITTED,       /* growth: committed, pages not published */
    PM_HOOK_OWNER_ANCHOR,         /* an owner about to read its superblock's
                                     anchor to keep or move it */
    PM_HOOK_OWNER_ANCHOR_DONE,    /* ... and done with it */
    PM_HOOK_REVOKE_DECIDE,        /* a thief: superblocks REVOKING, fenced,
                                     owners' busy flags not yet read */
    PM_HOOK_CREATE_HEADER,        /* create: header written, the file's
                                     blocks not yet allocated */
    PM_HOOK_CREATE_WRITTEN,       /* create: header written, the file not
                                     yet named (or its magic not written) */
    PM_HOOK_TX_COMMIT_POINT,      /* a commit: data durable, the state word
                                     (the commit point) not yet written */
    PM_HOOK_OPEN_SIZED,           /* an open: the file's size read, its
                                     header not yet */
    PM_HOOK_RUN_TAKE,             /* a thread chose a run it keeps, not yet
                                     taken back (pages.c) */
    PM_HOOK_LARGE_FREED,          /* a large free: the run's bits cleared,
                                     its pages not yet released (large.c) */
    PM_HOOK_LARGE_SHRUNK,         /* a shrink in place: the tail released,
                                     the resize not yet returned (large.c) */
    PM_HOOK_AUTO_WAIT,            /* a call waits for another thread's
                                     automatic transaction (tx.c) */
    PM_HOOK_PUB_PUBLISHED,        /* alloc_into: *dest names the block, the
                                     call not yet returned (publish.c) */
    PM_HOOK_JUDGE_LOCKED,         /* a view's check holds the shared lock it
                                     judges a rollback under (recover.c) */
    PM_HOOK_CHECK_PASS,           /* a check's pass: the page count followed,
                                     nothing read yet (check.c) */
    PM_HOOK_RUN_VALIDATED,        /* a view found a superblock's header
                                     valid (verify.c run_of) */
    PM_HOOK_TX_STATE,             /* a transaction's state word about to be
                                     written (tx.c set_state) */
    PM_HOOK_SCAVENGE_HELD,        /* a scavenge took a listed superblock to
                                     look at (superblock.c sort_lists) */
    PM_HOOK_POP_SIDE0,            /* a refill found a class's first partial
                                     list empty, not yet the second */
    PM_HOOK_POP_LOOKED,           /* a refill found both partial lists of a
                                     class empty, not yet told whether a
                                     scavenge moved one meanwhile */
    PM_HOOK_PUB_FREE_LANE,        /* free_from: the block pinned and its
                                     lane written, *dest not yet taken
                                     (publish.c) */
    PM_HOOK_AUTO_BEGIN_LOOKED,    /* an automatic transaction's begin:
                                     other threads' records looked at,
                                     the space not yet taken (tx.c) */
    PM_HOOK_AUTO_RESET,           /* an automatic transaction's abort: the
                                     runtime cleared, not yet rebuilt
                                     (recover.c pm_engine_reset) */
    PM_HOOK_FREE_SETTLED,         /* free's general way: no automatic
                                     transaction waited for, the block
                                     not yet looked up (free.c) */
    PM_HOOK_PUB_FREE_READ,        /* free_from: *dest read, the block not
                                     yet looked at (publish.c) */
    PM_HOOK_LANES_RESCAN,         /* chunks_walk: a lane table about to be
                                     cached (in pub_lanes_rescan, a thread's
                                     lookup of its kept lane may run here) */
    PM_HOOK_CHUNK_LINKED,         /* chunk_add_unlaned: a lane table linked
                                     and written back, its block not yet
                                     committed (publish.c) */
    PM_HOOK_AUTO_GATE,            /* a call at its gate found another
                                     thread's automatic transaction, its
                                     busy flag still up (tx.c) */
    PM_HOOK_LOOKUP_SETTLED,       /* realloc, realloc_into, usable_size and
                                     a move's free of the old block: no
                                     automatic transaction waited for,
                                     the block not yet looked up */
    PM_HOOK_BLOCK_FILL,           /* calloc, realloc: the block allocated,
                                     its bytes not yet written (alloc.c) */
    PM_HOOK_REGISTRY_SCAN,        /* a lock-free scan of the open spaces
                                     (persistent_space_of, pm_instance_open)
                                     found a slot in use, its space not yet
                                     compared (space.c) */
    PM_HOOK_WALK_VALIDATED,       /* a walk of the runs copied and judged a
                                     superblock's header, its callback not
                                     yet called (verify.c pm_walk_runs) */
    PM_HOOK_OWNER_FREE,           /* an owner's free on the general way:
                                     inside its operation, the anchor not
                                     yet read (superblock.c pm_free_small) */
    PM_HOOK_FILL_PIECE            /* calloc's zeros, realloc's copy: inside
                                     the piece's operation, its bytes not
                                     yet written (pm_fill_piece) */
};
typedef void pm_hook_fn(int point);
extern pm_hook_fn *_Atomic pm_test_hook;
static inline void pm_hook(int point)
{
    pm_hook_fn *fn = pm_load_relaxed(&pm_test_hook);
    if (PM_UNLIKELY(fn != NULL))
        fn(point);
}

/* Writes n bytes of a block the caller holds, from src, or zeros where
 * src is NULL (calloc's zeros, realloc's copy): inside operations, as
 * every write of the library to the space, a piece at a time (alloc.c).
 * Inline for one piece: a small calloc paid 43 instructions for the call
 * out of line (a review's callgrind). */
#define PM_FILL_PIECE ((size_t)256 << 10)
static inline void pm_fill_piece(struct pm_rt *rt, struct pm_trec *rec, void *dst,
                                 const void *src, size_t n)
{
    /* the block's bytes only: a thief may take any of the thread's
     * superblocks meanwhile (the block stays allocated, so none is
     * released under the write) */
    pm_op_begin_as(rec, PM_BUSY_NONE);
    pm_auto_gate(rt, rec);
    pm_hook(PM_HOOK_FILL_PIECE);
    if (src != NULL)
        memcpy(dst, src, n);
    else
        memset(dst, 0, n);
    pm_op_end(rec);
}
void pm_fill_pieces(struct pm_rt *rt, struct pm_trec *rec, void *dst, const void *src,
                    size_t n);
static inline void pm_fill_block(struct pm_rt *rt, struct pm_trec *rec, void *dst,
                                 const void *src, size_t n)
{
    pm_hook(PM_HOOK_BLOCK_FILL);
    if (PM_UNLIKELY(n > PM_FILL_PIECE))
        pm_fill_pieces(rt, rec, dst, src, n);
    else
        pm_fill_piece(rt, rec, dst, src, n);
}

/* ---- bits ---- */
static inline uint32_t pm_ctz64(uint64_t x) { return (uint32_t)__builtin_ctzll(x); }
static inline uint32_t pm_clz64(uint64_t x) { return (uint32_t)__builtin_clzll(x); }
/* pm_ctz64 for malloc's fast path: x is not 0, and the count comes as 64
 * bits.  gcc 12 compiles __builtin_ctzll there to a zeroing xor, tzcnt and
 * a sign extension of the int it returns; this is the tzcnt alone (two
 * instructions of the fast path's forty, docs/design.md "Small blocks").
 * Inline assembly, a GNU extension, for x86-64 only; a CPU without BMI1
 * runs the same bytes as bsf, which gives the same count when x is not 0. */
static inline uint64_t pm_ctz64_nz(uint64_t x)
{
#if defined(__x86_64__) && defined(__GNUC__)
    uint64_t i;
    __asm__("tzcntq %1, %0" : "=r"(i) : "r"(x) : "cc");
    return i;
#else
    return (uint64_t)__builtin_ctzll(x);
#endif
}
static inline uint32_t pm_popcount64(uint64_t x) { return (uint32_t)__builtin_popcountll(x); }

#pragma GCC visibility pop

#endif

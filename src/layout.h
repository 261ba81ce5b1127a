/* The on-file format of a space: fixed-width structs, offsets only.
 *
 * A space file is
 *
 *   [ header (struct pm_header) | run bitmaps | root table | lanes ] meta
 *   [ page 0 | page 1 | ... | page n_pages-1 ]                        data
 *
 * The data region is cut into pages of 2^page_shift bytes (256 B .. 4 KiB,
 * scaled with the space).  Every allocation that is not a small block is a
 * run of whole pages; every superblock is a run too.  Three bitmaps with one
 * bit per page of the space's maximum size say where the live runs are:
 *
 *   START  page is the first page of a live run      (the commit bit)
 *   END    page is the last page of a live run
 *   KIND   the run starting here is a superblock (its header is in-band)
 *
 * A run is live exactly when its START bit is set; its length is the distance
 * to the first END bit at or after it.  A superblock begins with a
 * struct pm_sb_header followed by its allocation and remote-free bitmaps.
 * Everything else the allocator knows (which pages are claimed, who owns a
 * superblock, free lists, hints) is volatile and rebuilt at open.
 *
 * No field holds an address.  Every size and offset the format depends on is
 * pinned by a _Static_assert at the end of this file; changing one is a
 * format change (bump PM_FORMAT_MAJOR for incompatible ones).
 */
#ifndef PM_LAYOUT_H
#define PM_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "atomic.h"

#define PM_MAGIC            "PMSPACE\x1a"   /* 8 bytes, no terminator used */
#define PM_FORMAT_MAJOR     2
#define PM_FORMAT_MINOR     0
#define PM_BYTE_ORDER_MARK  UINT64_C(0x0102030405060708)

#define PM_HEADER_SIZE      2048u     /* struct pm_header */
#define PM_META_ALIGN       64u       /* alignment of meta areas */
#define PM_HOLES_PUNCHED    0u        /* live.no_holes */
#define PM_HOLES_NONE       1u
#define PM_HOLES_LAZY       2u
#define PM_HOLES_TAIL       3u
#define PM_DATA_ALIGN       4096u     /* data_off is a multiple of this */
#define PM_BASE_ALIGN       (UINT64_C(2) << 20) /* mapping bases are 2 MiB aligned */
#define PM_MIN_PAGE_SHIFT   8u        /* 256-byte pages for tiny spaces */
#define PM_MAX_PAGE_SHIFT   12u       /* 4 KiB pages from 128 KiB up */
#define PM_N_BASES          16u       /* mapping-base history kept */

/* pm_fixed.flags */
#define PM_FLAG_GROWABLE    0x1u

/* pm_state.durability: recorded with the space; the values of
 * enum persistent_durability in persistent_mem.h */
#define PM_DUR_PROCESS      1u
#define PM_DUR_PMEM         2u
#define PM_DUR_SYNC         3u

/* Written once at create and never again; checksummed. */
struct pm_fixed {
    uint8_t  magic[8];
    uint64_t byte_order;          /* PM_BYTE_ORDER_MARK in the writer's order */
    uint16_t major;
    uint16_t minor;
    uint8_t  word_size;           /* sizeof(void *) of the creator */
    uint8_t  page_shift;
    uint16_t reserved0;
    uint32_t header_size;         /* PM_HEADER_SIZE */
    uint32_t sb_size;             /* target superblock size in bytes */
    uint32_t flags;               /* PM_FLAG_* */
    uint32_t roots_cap;           /* slots in the in-meta root table */
    uint32_t n_lanes;             /* publish lanes in meta */
    uint32_t reserved1;
    uint64_t max_pages;           /* pages at the maximum size */
    uint64_t data_off;            /* offset of page 0 */
    uint64_t meta_size;           /* == data_off */
    uint64_t bits_size;           /* bytes of each run bitmap */
    uint64_t start_bits_off;
    uint64_t end_bits_off;
    uint64_t kind_bits_off;
    uint64_t roots_off;
    uint64_t lanes_off;
    uint64_t create_time_ns;      /* CLOCK_REALTIME at create */
    uint8_t  uuid[16];            /* random, version 4 */
    uint8_t  reserved2[108];
    uint32_t checksum;            /* CRC-32C of the struct with this field 0 */
};

/* One mapping of the space by a writer: where it was and how much of the
 * address space it reserved.  persistent_ptr() rewrites pointers from it. */
struct pm_base_rec {
    uint64_t base;
    uint64_t size;
    uint64_t generation;
};

/* The mutable part of the header, kept twice.  A writer fills the slot that
 * is not current with seq + 1 and persists it; an open picks the valid slot
 * with the higher seq, so a crash in the middle of an update leaves the
 * previous state.  Only open and close write it (growth moves
 * pm_live.n_pages alone); n_pages and file_size here are as of the last
 * open or close. */
struct pm_state {
    uint64_t seq;
    uint64_t n_pages;             /* data pages now in the file */
    uint64_t file_size;           /* == data_off + n_pages << page_shift */
    uint64_t generation;          /* generation of bases[0] */
    uint32_t clean;               /* 1 after a clean close */
    uint32_t durability;          /* PM_DUR_* */
    uint32_t n_bases;             /* valid entries in bases[], newest first */
    uint32_t n_opens;             /* writer opens so far (diagnostic) */
    struct pm_base_rec bases[PM_N_BASES];
    uint64_t hwm_pages;           /* pages up to the highest ever used */
    uint8_t  reserved[68];
    uint32_t checksum;            /* CRC-32C of the slot with this field 0 */
};

/* Words changed by lock-free code while the space is open; not checksummed,
 * each is valid on its own at every instant.
 *
 * n_pages is the authoritative number of data pages (format 2): growth
 * extends the file first and then moves n_pages forward with one CAS, so
 * any thread can finish a growth another one started and a stale grower
 * can never move it back.  It is never below pm_state.n_pages (open and
 * close copy it there) and the file always holds that many pages. */
struct pm_live {
    pm_atomic_u64 roots_next_off; /* first overflow root table, 0 if none */
    pm_atomic_u64 root0_val;      /* the root with tag 0 (0 is the empty key) */
    pm_atomic_u64 lanes_next_off; /* first overflow lane table, 0 if none */
    pm_atomic_u64 n_pages;        /* data pages in the file, committed */
    pm_atomic_u64 no_holes;       /* PM_HOLES_NONE (1): every page of the
                                     file is backed (set by the create of
                                     a fixed space, and by a writer's open
                                     of one once it backed the holes); PM_HOLES_PUNCHED (0): holes
                                     where runs were punched (set before a
                                     punch; also files made before the word
                                     existed), found with SEEK_HOLE;
                                     PM_HOLES_LAZY (2): a lazy writer left
                                     holes anywhere (set before a lazy
                                     create or growth); the next eager
                                     writer allocates the whole file;
                                     PM_HOLES_TAIL (3): as NONE but for the
                                     run bitmaps' words of pages past
                                     n_pages, holes until growth backs
                                     them (a growable space's create and
                                     fill; versions before 2026-12-05 take
                                     it for PUNCHED and fill them) */
    uint64_t reserved[11];
};

/* Root table slot.  key 0 is the empty key (tag 0 lives in pm_live); a slot,
 * once it holds a key, keeps it until an open compacts the table.  val is
 * the offset of the root block, 0 when the tag has no block. */
struct pm_root_slot {
    pm_atomic_u64 key;
    pm_atomic_u64 val;
};

/* An overflow root table, allocated from the heap when the ones before it
 * have no room for a key.  Followed by cap slots. */
struct pm_root_table {
    uint64_t magic;               /* PM_ROOT_TABLE_MAGIC */
    uint64_t cap;
    pm_atomic_u64 next_off;
    uint64_t reserved;
    struct pm_root_slot slot[];
};
#define PM_ROOT_TABLE_MAGIC UINT64_C(0x52544f4f524d5001)  /* "\1PMROOTR" */

/* A publish lane: the intent record of one in-flight publishing call.
 * op == PM_LANE_IDLE when nothing is in flight.  The record is written in
 * one cache line and made durable with one fence, but power failure is
 * atomic for 8 bytes only: a line caught in flight may land with the new
 * op word and some old fields.  So op carries a check of the fields
 * (pm_lane_check); a record that fails it was never complete, its call
 * never started (it does nothing before the record is durable), and it
 * reads as idle (pm_lane_op). */
struct pm_lane {
    pm_atomic_u64 op;             /* PM_LANE_* | pm_lane_check() << 8 */
    uint64_t dest_off;            /* location inside the space being set */
    uint64_t block_off;           /* block being published or freed */
    uint64_t old_off;             /* realloc: block being replaced */
    uint64_t size;
    pm_atomic_u64 tx_off;         /* the transaction log of the thread that
                                     holds the lane, 0 if none (tx.c) */
    uint64_t reserved[2];
};

struct pm_header {
    struct pm_fixed fixed;        /*    0 */
    struct pm_state state[2];     /*  256 */
    struct pm_live live;          /* 1280 */
    struct pm_lane chunk_lane;    /* 1408: the lane an overflow lane table
                                     is added through (publish.c
                                     chunk_add), by one thread at a time;
                                     zero in files of earlier versions,
                                     which ignore it */
    uint8_t reserved[576];        /* 1472 */
};

#define PM_LANE_IDLE        0u
#define PM_LANE_ALLOC       1u   /* block_off is being published at dest */
#define PM_LANE_FREE        2u   /* block_off is being freed from dest */
#define PM_LANE_REALLOC     3u   /* block_off replaces old_off at dest */

/* 56 bits that depend on every field of a lane record. */
static inline uint64_t pm_lane_check(uint64_t op, uint64_t dest, uint64_t blk,
                                     uint64_t old, uint64_t size)
{
    uint64_t x = op * UINT64_C(0x9e3779b97f4a7c15);
    const uint64_t v[4] = {dest, blk, old, size};
    for (int i = 0; i < 4; i++) {
        x ^= v[i] + UINT64_C(0x632be59bd9b4e019) + (x << 6) + (x >> 2);
        x *= UINT64_C(0xbf58476d1ce4e5b9);
        x ^= x >> 31;
    }
    return x >> 8;
}

/* The operation a lane record holds; PM_LANE_IDLE also for a torn one. */
static inline uint64_t pm_lane_op(const struct pm_lane *l, uint64_t word)
{
    uint64_t op = word & 0xff;
    if (op == PM_LANE_IDLE ||
        (word >> 8) != pm_lane_check(op, l->dest_off, l->block_off, l->old_off, l->size))
        return PM_LANE_IDLE;
    return op;
}

/* A transaction log (tx.c): a block found from a lane's tx_off, kept by
 * the lane from one thread to the next.  Its state word says what recovery
 * does: IDLE nothing, ACTIVE roll the transaction back, COMMITTED finish
 * its frees; PM_TX_PREV with ACTIVE: finish the frees of the transaction
 * before it too.  Past the head the block holds two streams of entries,
 * one half each (pm_txlog_stream): a transaction writes in the stream of
 * its generation's parity, so the entries of the one before stay whole
 * while its frees are still to be finished.  Each entry is written and
 * checked on its own: an entry belongs to the transaction of a generation
 * only if its check (pm_txent_check over the generation, the head and the
 * snapshot data) is right, so the first entry that fails ends the stream
 * -- a torn one, or one left by an earlier transaction.  A JUMP entry
 * continues the stream in a run of pages (len bytes at off) that the
 * transaction claimed and does not hold as a block: nobody else is handed
 * those pages while it (or the finishing of its frees) runs, and after a
 * crash recovery reads them before anything is allocated.  A log whose
 * magic is PM_TXLOG_MAGIC_V1 (the first format) has one stream over the
 * whole block and never PM_TX_PREV.  The check covers the log too, by its
 * offset (pm_txlog_key), from the third format on: a segment's pages go
 * back to the heap with their entries, and every log counts generations
 * from 1, so another log's transaction of the same generation that goes
 * on in them and writes fewer entries would otherwise have the rest taken
 * for its own (PM_TXLOG_MAGIC_V2 logs, the second format, check without
 * it; a writer's first transaction on one makes it the third).  From the
 * fourth format on, the key also holds a salt of the generation's stream
 * (salt[gen & 1]), drawn at random when the log is made and again by
 * every writer's open once its recovery is done, and written back then
 * (tx.c pm_tx_salt_logs): entries a file holds for a generation that
 * comes again -- a transaction's that a crash cut before its state word
 * said it was active, a state word rewound, a log crossed with another
 * file's -- are no later transaction's (a fuzzer found an automatic
 * transaction's abort putting back a page image of a transaction of the
 * same generation that had committed long before). */
struct pm_txlog {
    uint64_t magic;               /* PM_TXLOG_MAGIC */
    uint64_t size;                /* bytes of the block, head included */
    pm_atomic_u64 state;          /* PM_TX_* | generation << 8 */
    pm_atomic_u64 salt[2];        /* of each stream (generation parity),
                                     since the last writer's open */
    uint64_t reserved[3];
};
#define PM_TXLOG_MAGIC_V1 UINT64_C(0x474f4c58544d5001)  /* "\1PMTXLOG" */
#define PM_TXLOG_MAGIC_V2 UINT64_C(0x474f4c58544d5002)  /* "\2PMTXLOG" */
#define PM_TXLOG_MAGIC_V3 UINT64_C(0x474f4c58544d5003)  /* "\3PMTXLOG" */
#define PM_TXLOG_MAGIC    UINT64_C(0x474f4c58544d5004)  /* "\4PMTXLOG" */
#define PM_TX_IDLE          0u
#define PM_TX_ACTIVE        1u
#define PM_TX_COMMITTED     2u
#define PM_TX_PHASE         0x7fu /* the phase of a state word */
#define PM_TX_PREV          0x80u /* ACTIVE, and the previous transaction
                                     (generation - 1) committed frees
                                     that are still to be finished */
#define PM_TX_GEN_MASK      ((UINT64_C(1) << 56) - 1) /* generations count
                                     modulo 2^56 (the state word's bits):
                                     the one after the last is 0 */

/* Whether a log of this magic has two streams (the second format on). */
static inline bool pm_txlog_two_streams(uint64_t magic)
{
    return magic == PM_TXLOG_MAGIC || magic == PM_TXLOG_MAGIC_V3 ||
           magic == PM_TXLOG_MAGIC_V2;
}

/* What the checks of the entries of a log of this magic at off are keyed
 * by, besides the generation: its offset (never 0) and the salt of the
 * generation's stream in the fourth format, its offset in the third,
 * nothing before. */
static inline uint64_t pm_txlog_key_of(uint64_t magic, uint64_t off, uint64_t salt)
{
    return magic == PM_TXLOG_MAGIC ? off ^ salt : magic == PM_TXLOG_MAGIC_V3 ? off : 0;
}
static inline uint64_t pm_txlog_key(const struct pm_txlog *lg, uint64_t off, uint64_t gen)
{
    return pm_txlog_key_of(lg->magic, off, pm_load_relaxed(&lg->salt[gen & 1]));
}

/* The stream of entries of generation gen in the log at off (bytes
 * [*start, *end) of the space). */
static inline void pm_txlog_stream(const struct pm_txlog *lg, uint64_t off, uint64_t gen,
                                   uint64_t *start, uint64_t *end)
{
    uint64_t head = off + sizeof *lg;
    if (!pm_txlog_two_streams(lg->magic)) {
        *start = head;
        *end = off + lg->size;
        return;
    }
    uint64_t half = ((lg->size - sizeof *lg) / 2) & ~UINT64_C(63);
    *start = head + (gen & 1) * half;
    *end = *start + half;
}

struct pm_txent {
    uint64_t kind_len;            /* PM_TXE_* | len << 8 */
    uint64_t off;                 /* offset in the space */
    uint64_t check;               /* pm_txent_check() */
    uint64_t reserved;
    /* SNAPSHOT: len bytes, then zeros to a multiple of 8 */
};
#define PM_TXE_SNAPSHOT     1u    /* [off, off + len) held these bytes */
#define PM_TXE_ALLOC        2u    /* the block at off was allocated */
#define PM_TXE_FREE         3u    /* the block at off is freed at commit */
#define PM_TXE_JUMP         4u    /* the log goes on at off (len bytes) */
#define PM_TXE_PAGE         5u    /* the memory page at off held these len
                                     bytes (automatic transactions; off from
                                     the start of the file, metadata too) */

/* A check over an entry: its generation, its log's key (pm_txlog_key),
 * head and data words.  In three steps (the head, each data word, the
 * end), so that a writer can take the words as it copies them (tx.c
 * entry_fill). */
static inline uint64_t pm_txent_check_word(uint64_t x, uint64_t w)
{
    x ^= w;
    x *= UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 32);
}
static inline uint64_t pm_txent_check_head(uint64_t gen, uint64_t key, uint64_t kind_len,
                                           uint64_t off)
{
    uint64_t x = (gen ^ UINT64_C(0x6a09e667f3bcc909)) * UINT64_C(0x9e3779b97f4a7c15);
    if (key != 0)                 /* 0: the second format's check */
        x = pm_txent_check_word(x, key);
    x ^= kind_len + UINT64_C(0x632be59bd9b4e019) + (x << 6) + (x >> 2);
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    return x ^ (off + (x >> 29));
}
static inline uint64_t pm_txent_check_end(uint64_t x)
{
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    return (x ^ (x >> 31)) | 1;   /* never 0, which a fresh page holds */
}
static inline uint64_t pm_txent_check(uint64_t gen, uint64_t key, uint64_t kind_len,
                                      uint64_t off, const uint64_t *data, uint64_t n_words)
{
    uint64_t x = pm_txent_check_head(gen, key, kind_len, off);
    for (uint64_t i = 0; i < n_words; i++)
        x = pm_txent_check_word(x, data[i]);
    return pm_txent_check_end(x);
}

/* An overflow lane table, allocated from the heap when every lane is held
 * by a live thread; chained from pm_live.lanes_next_off.  Followed by n
 * lanes. */
struct pm_lane_table {
    uint64_t magic;               /* PM_LANE_TABLE_MAGIC */
    uint64_t n;
    pm_atomic_u64 next_off;
    uint64_t reserved[5];
    struct pm_lane lane[];
};
#define PM_LANE_TABLE_MAGIC UINT64_C(0x534e414c4d500001)  /* "\1PMLANS" */

/* The in-band header of a superblock.  n_words 64-bit words of allocation
 * bits follow it, then n_words words of remote-free bits.  A block is
 *   free       alloc 0, remote 0
 *   live       alloc 1, remote 0
 *   freed by another thread, not yet collected by the owner
 *              alloc 1, remote 1
 * (alloc 0, remote 1 only arises from a detected double free or a crash in
 * the middle of a collection; recovery and collection clear it.) */
struct pm_sb_header {
    uint32_t magic;               /* PM_SB_MAGIC */
    uint16_t cls;                 /* size class index */
    uint16_t n_words;             /* words in each bitmap */
    uint32_t n_blocks;
    uint32_t block_size;
    uint32_t n_pages;             /* length of the run */
    uint32_t data_start;          /* offset of block 0 from the header */
    uint32_t check;               /* pm_sb_check() of the fields above */
    uint32_t reserved[9];
    pm_atomic_u64 bits[];
};
#define PM_SB_MAGIC         0x53424d50u  /* "PMBS" */
#define PM_SB_MAX_BLOCKS    4096u        /* so one summary word covers a bitmap */

static inline uint32_t pm_sb_check(const struct pm_sb_header *h)
{
    uint64_t x = ((uint64_t)h->magic << 32) ^ ((uint64_t)h->cls << 16) ^
                 h->n_words;
    x ^= ((uint64_t)h->n_blocks << 32) ^ h->block_size;
    x ^= ((uint64_t)h->n_pages << 40) ^ ((uint64_t)h->data_start << 8);
    x *= UINT64_C(0x9e3779b97f4a7c15);
    return (uint32_t)(x >> 32);
}

_Static_assert(sizeof(struct pm_fixed) == 256, "pm_fixed is 256 bytes");
_Static_assert(offsetof(struct pm_fixed, byte_order) == 8, "byte order at 8");
_Static_assert(offsetof(struct pm_fixed, major) == 16, "major at 16");
_Static_assert(offsetof(struct pm_fixed, word_size) == 20, "word size at 20");
_Static_assert(offsetof(struct pm_fixed, max_pages) == 48, "max_pages at 48");
_Static_assert(offsetof(struct pm_fixed, uuid) == 128, "uuid at 128");
_Static_assert(offsetof(struct pm_fixed, checksum) == 252, "checksum last");
_Static_assert(sizeof(struct pm_base_rec) == 24, "base record is 24 bytes");
_Static_assert(sizeof(struct pm_state) == 512, "pm_state is 512 bytes");
_Static_assert(offsetof(struct pm_state, bases) == 48, "bases at 48");
_Static_assert(offsetof(struct pm_state, checksum) == 508, "checksum last");
_Static_assert(sizeof(struct pm_live) == 128, "pm_live is 128 bytes");
_Static_assert(offsetof(struct pm_live, n_pages) == 24, "live n_pages at 24");
_Static_assert(sizeof(struct pm_header) == PM_HEADER_SIZE, "header size");
_Static_assert(offsetof(struct pm_header, state) == 256, "state at 256");
_Static_assert(offsetof(struct pm_header, live) == 1280, "live at 1280");
_Static_assert(sizeof(struct pm_root_slot) == 16, "root slot is 16 bytes");
_Static_assert(sizeof(struct pm_root_table) == 32, "root table head");
_Static_assert(sizeof(struct pm_lane) == 64, "a lane is one cache line");
_Static_assert(offsetof(struct pm_lane, tx_off) == 40, "lane tx_off at 40");
_Static_assert(sizeof(struct pm_txlog) == 64, "a log head is one line");
_Static_assert(sizeof(struct pm_txent) == 32, "a log entry head is 32 bytes");
_Static_assert(sizeof(struct pm_lane_table) == 64, "lane table head is a line");
_Static_assert(sizeof(struct pm_sb_header) == 64, "sb header is one line");
_Static_assert(offsetof(struct pm_sb_header, bits) == 64, "bits after header");
_Static_assert(PM_HEADER_SIZE % PM_META_ALIGN == 0, "meta alignment");

#endif

/* persistent_mem: a lock-free persistent memory allocator.
 *
 * A *space* is a heap inside a memory-mapped file.  A multithreaded program
 * allocates from it with persistent_malloc()/persistent_free(); what it
 * stores survives restarts and crashes and is found again through tagged
 * roots.  Allocation, free, realloc and the root calls never take a lock.
 *
 * Conventions
 *   - A space is named by an allocator_space_t pointer, which is the base
 *     address of its mapping, so offsets are (char *)ptr - (char *)space.
 *   - Setup calls (open, close, info, sync, check, stats) return 0 or a
 *     negative code: a PERSISTENT_E_* below or -errno.  persistent_errormsg()
 *     explains the last failure of the calling thread.
 *   - Allocation calls behave like libc: NULL with errno set (ENOMEM when the
 *     space is exhausted, EINVAL for bad arguments, EROFS on a read-only
 *     space).
 *   - Misuse that is detected (double free, a pointer that is not a live
 *     block of the space) is reported through the error hook and changes
 *     nothing.
 *   - No call here is async-signal-safe.
 *   - Up to 4,095 threads may use one space at once (a thread's record is
 *     given back when it exits).  A call by one more fails with EAGAIN
 *     (persistent_free: reported through the error hook, the block left as
 *     it is, allocated); so does one by a thread using more spaces at once
 *     than its table of them holds, with EMFILE: a thread's table holds
 *     16, the spaces it has allocated from or freed into (or used for any
 *     call that needs its record) that are still open; a space's entry
 *     is free again once that space is closed.  At most 256 spaces are
 *     open at once in a process (PM_MAX_OPEN; scratch spaces and every
 *     kind of open count, opens under way included): one more open fails
 *     with EMFILE, see persistent_space_open.
 *   - After fork(), a space the parent had open does not exist in the child
 *     (calls on it fail as on any unknown space): the two processes would
 *     share its lock and pages.  The child may open it again once the
 *     parent has closed it, and the parent may open it again while the
 *     child lives: the child keeps neither the writer's descriptor nor its
 *     mapping.  Its pages stay readable in the child at the same
 *     addresses, mapped copy-on-write: what the child writes there is its
 *     own and never reaches the file, and a page it has not written shows
 *     what the parent writes later.  Where the child cannot map the file
 *     again (the program had closed the space's descriptor behind the
 *     library's back; no /proc after a chroot; a file the process may no
 *     longer open), its fork handler copies the space's pages into memory
 *     of the child's own instead, as the child starts (what the parent's
 *     other threads write meanwhile may be in it), at the cost of the
 *     copy; the child reads and writes it as it would the mapping.  A
 *     private open that recovered (PERSISTENT_OPEN_PRIVATE without
 *     NO_RECOVER) always gets that copy: its heap is its private pages,
 *     not the file, and the child has them as the parent had them at the
 *     fork, its writes and allocations included (and the shared lock
 *     goes).  A read-only view stays as it is (read-only, showing what
 *     the writer writes), and so does a private view without recovery
 *     (its pages copy-on-write, as any private mapping across a fork).  An
 *     automatic transaction the parent had open is not the child's.
 *     Until the child has run its fork handlers, its first instructions,
 *     it still holds the writer's lock.  A fork waits for the opens and
 *     closes other threads have under way (an open's recovery included).
 *
 * The calls marked [seed] keep the names and shapes of the "Persistence of
 * Memory" allocator, so programs written for it compile unchanged.
 */
#ifndef PERSISTENT_MEM_H
#define PERSISTENT_MEM_H

#include <stddef.h>
#include <stdint.h>
#ifndef __cplusplus
#include <stdbool.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define PERSISTENT_MEM_VERSION_MAJOR 0
#define PERSISTENT_MEM_VERSION_MINOR 1

/* ------------------------------------------------------------------------ */
/* Types and offsets                                                          */

/* Opaque.  A pointer to it is the base address of the space's mapping. */
typedef struct allocator_space allocator_space_t;

/* An offset from the base of a space; 0 means NULL (offset 0 is the header,
 * never a block).  [seed] */
#if UINTPTR_MAX > 0xffffffffu
typedef uint64_t persistent_offset_t;
#else
typedef uint32_t persistent_offset_t;
#endif

static inline persistent_offset_t
persistent_offset_from_ptr(const void *space, const void *ptr)
{
    return (uintptr_t)ptr > (uintptr_t)space
               ? (persistent_offset_t)((uintptr_t)ptr - (uintptr_t)space)
               : 0;
}

static inline void *
persistent_ptr_from_offset(const void *space, persistent_offset_t off)
{
    return off ? (void *)((uintptr_t)space + off) : (void *)0;
}

/* [seed] ptr -> offset (0 for NULL) and offset -> ptr (NULL for 0). */
#define ptr_to_persistent_offset(space, ptr) \
    persistent_offset_from_ptr((const void *)(space), (const void *)(ptr))
#define persistent_offset_to_ptr(space, off) \
    persistent_ptr_from_offset((const void *)(space), (persistent_offset_t)(off))
/* The spelling used in the seed's README. */
#define persistent_persistent_offset_to_ptr(space, off) \
    persistent_offset_to_ptr(space, off)

/* ------------------------------------------------------------------------ */
/* Error codes (negative; -errno values are used beside them)                */

enum persistent_error {
    PERSISTENT_E_NOT_SPACE   = -1001, /* the file is not a space */
    PERSISTENT_E_TRUNCATED   = -1002, /* shorter than its header says */
    PERSISTENT_E_VERSION     = -1003, /* another major format version */
    PERSISTENT_E_WORD_SIZE   = -1004, /* made by a 32/64-bit other build */
    PERSISTENT_E_BYTE_ORDER  = -1005, /* made on a machine of other endianness */
    PERSISTENT_E_CHECKSUM    = -1006, /* header checksum does not match */
    PERSISTENT_E_SIZE        = -1007, /* header sizes disagree with the file
                                         or with each other */
    PERSISTENT_E_BUSY        = -1008, /* another writer has the space open (or, from
                                         persistent_check, a writer kept it from a
                                         verdict) */
    PERSISTENT_E_CORRUPT     = -1009, /* heap metadata is inconsistent */
    PERSISTENT_E_DOUBLE_FREE = -1010, /* (error hook) block already free */
    PERSISTENT_E_BAD_POINTER = -1011, /* (error hook) not a live block */
    PERSISTENT_E_FLUSH       = -1012, /* requested flush method unavailable */
    PERSISTENT_E_READONLY    = -1013, /* space opened read-only */
    PERSISTENT_E_FILE_LOST   = -1014, /* (also error hook) the program closed
                                         the space's file descriptor; the
                                         space no longer grows or syncs and
                                         never touches the file that has
                                         the descriptor's number now */
    PERSISTENT_E_ROOT_BLOCK  = -1015, /* (error hook) the block is a root's:
                                         free it with persistent_root_remove;
                                         it cannot be another tag's root */
    PERSISTENT_E_TX_BLOCK    = -1016, /* (error hook) the block belongs to an
                                         open transaction (allocated or freed
                                         in it): only it may free it */
    PERSISTENT_E_TX_AUTO     = -1017  /* (error hook) a thread wrote to a space
                                         while another thread's automatic
                                         transaction had it */
};

/* Message for the last failed call of this thread (never NULL). */
const char *persistent_errormsg(void);
/* Static description of a code returned by any call here. */
const char *persistent_strerror(int code);

/* ------------------------------------------------------------------------ */
/* [seed] Lifecycle                                                           */

/* Creates filename as a space with room for requested_size bytes of blocks,
 * or opens it read-write if it already is a space (an existing space is
 * never shrunk or re-initialised; requested_size is then ignored).  An
 * existing empty file (from mkstemp, say) is made a space in place, keeping
 * its inode and permissions.  Any other file that is not a space is left
 * untouched.  A process killed while creating leaves no file behind (or,
 * making an empty file a space, an interrupted create that the next create
 * finishes).  NULL with errno and persistent_errormsg() on failure (EBUSY:
 * another writer has it). */
allocator_space_t *create_persistent_allocator(const char *filename,
                                               size_t requested_size);

/* Opens filename privately for forensics: mapped copy-on-write, works on a
 * read-only file and on a space left dirty by a crash, never writes the
 * file.  A dirty space is recovered in the private copy and allocation
 * works there; such an open holds the file's shared lock until it is
 * closed, so that the file does not change under the copy (a writer's
 * open meanwhile fails with PERSISTENT_E_BUSY).  A space too damaged to
 * recover, or one a writer has open, is still opened, as it is on file
 * (following the writer's growth), with allocation disabled
 * (persistent_space_info says recovery_skipped).  NULL with errno on
 * failure. */
allocator_space_t *load_private_persistent_allocator(const char *filename);

/* Closes the space and marks a clean shutdown.  No thread may be inside a
 * call on the space.  NULL is a no-op. */
void destroy_persistent_allocator(allocator_space_t *space);

/* [seed] Returns the current address of a raw pointer stored in the space
 * while it was mapped elsewhere: during any earlier mapping recorded in the
 * header (the last 16), the pointer itself when it is already inside the
 * current mapping, NULL when it belongs to none.  Where the ranges of two
 * earlier mappings overlap, the most recent wins; persistent_ptr_from()
 * resolves the others.  A read-only or private open also knows the
 * mappings of a writer that opened the file after it. */
void *persistent_ptr(allocator_space_t *space, void *ptr);

/* The open space whose mapping (its whole reserved range) contains ptr, or
 * NULL.  Lock-free; a thread-local cache makes repeated lookups of the same
 * space cheap.  This is how data stored in a space finds its space again
 * after a remap (the C++ PersistentPtr uses it). */
allocator_space_t *persistent_space_of(const void *ptr);

/* Rewrites ptr as a pointer from the mapping with this generation (see
 * persistent_space_info); NULL if that generation is not recorded or ptr is
 * outside its range. */
void *persistent_ptr_from(allocator_space_t *space, void *ptr,
                          uint64_t generation);

/* ------------------------------------------------------------------------ */
/* Richer lifecycle                                                           */

#define PERSISTENT_OPEN_CREATE     0x01u /* create the file if absent */
#define PERSISTENT_OPEN_EXCL       0x02u /* with CREATE: fail if it exists */
#define PERSISTENT_OPEN_READONLY   0x04u /* map read-only beside a writer */
#define PERSISTENT_OPEN_PRIVATE    0x08u /* copy-on-write, never writes */
#define PERSISTENT_OPEN_NO_RECOVER 0x10u /* with PRIVATE: no in-memory
                                            recovery; the heap as on file,
                                            allocation disabled */
#define PERSISTENT_OPEN_SCRATCH    0x20u /* a new space with no name, gone
                                            at close: in memory (memfd)
                                            when path is NULL, else an
                                            unnamed file (O_TMPFILE) in the
                                            directory path.  With size (and
                                            max_size); no other flag but
                                            PERSISTENT_OPEN_LAZY */
#define PERSISTENT_OPEN_LAZY       0x40u /* a writer: the file's blocks are
                                            allocated when first written,
                                            not in advance (create and
                                            growth extend the file with
                                            holes; a freed page run handed
                                            out again is not backed first).
                                            A 3.5 GB block of which 150 MB
                                            is written takes 150 MB of disk.
                                            The price: when the file system
                                            is full, a store into a page
                                            never written kills the process
                                            with SIGBUS, where the default
                                            would have failed the malloc
                                            with ENOMEM.  The next open
                                            without this flag backs every
                                            hole first (the space records
                                            that it may have some) */

/* Durability: what a completed call survives.  Recorded with the space. */
enum persistent_durability {
    PERSISTENT_DURABILITY_DEFAULT = 0, /* the space's recorded mode; PROCESS
                                          for a new space on an ordinary file */
    PERSISTENT_DURABILITY_PROCESS = 1, /* survives the process being killed
                                          at any instruction; no flushes */
    PERSISTENT_DURABILITY_PMEM    = 2, /* also survives power failure on real
                                          persistent memory: every metadata
                                          change is flushed and fenced */
    PERSISTENT_DURABILITY_SYNC    = 3  /* as PROCESS, plus persistent_sync()
                                          makes everything durable on disk */
};

struct persistent_options {
    uint32_t flags;          /* PERSISTENT_OPEN_* */
    uint32_t durability;     /* enum persistent_durability */
    uint64_t size;           /* create: bytes of blocks wanted */
    uint64_t max_size;       /* create: growable up to this many bytes of
                                blocks; 0 = fixed at size.  The address
                                range of the maximum is reserved (not
                                allocated) at every open, and the space
                                grows in place: any thread that needs
                                pages grows it, with no lock, and no
                                pointer ever moves.  The file's metadata
                                has a bit map sized for the maximum
                                (3 bits a page: 6 MiB for 64 GiB of
                                4 KiB pages), left as holes past the
                                pages the space has: its disk blocks
                                follow the size, not the maximum */
    uint32_t mode;           /* create: file mode, 0 = 0644 (umask applies) */
    uint32_t reserved;
};

/* Opens (and with PERSISTENT_OPEN_CREATE creates) a space.  Every open
 * validates the file first; a file that fails validation is never written.
 * An open for writing takes an exclusive flock(2): a second writer, in this
 * process or another, gets PERSISTENT_E_BUSY.  A writer verifies the whole
 * heap (runs, superblocks, roots, lanes: the rules persistent_check
 * applies) before it writes anything, refuses a damaged space with
 * PERSISTENT_E_CORRUPT, and recovers one that was not closed cleanly.
 * When a transaction is to be rolled back, the open first tries the
 * rollback on a copy-on-write mapping of the file (nothing reaches the
 * file) and refuses the space if the heap would not verify after it (a
 * private open then gives the heap as it is on file, without recovery).
 * A writer's open of a space of 1,024 superblocks or more reads their
 * headers with up to 4 threads: as many readers (the opening thread and
 * helper threads) as the CPUs the opening thread may run on.  The helpers block every signal but those a fault raises and are
 * joined before the open goes on (glibc then treats the process as
 * multithreaded for good; a seccomp policy against clone applies to
 * them).  PERSISTENT_MEM_OPEN_THREADS=N sets the number of readers for any
 * space (1: the opening thread alone; at most 16; 0 or not a number: the
 * rule above).
 * With PERSISTENT_OPEN_CREATE an empty file becomes a space (see
 * create_persistent_allocator).  Read-only and private opens without
 * recovery accept damaged spaces (for inspection; nothing they do writes
 * the file) and follow the growth of a writer in another process.
 *
 * The space keeps the file descriptor it opened.  A program that closes it
 * behind the library's back (daemonising, closefrom) loses the writer's
 * lock with it; the library notices before its next use of the descriptor
 * (checked every time: growth, hole punching, sync), reports
 * PERSISTENT_E_FILE_LOST once through the error hook, and from then on
 * never touches whatever file the number names: the space goes on in the
 * pages it has and stops growing and syncing.
 *
 * At most 256 spaces may be open in a process at once (every kind of open,
 * scratch spaces too).  An open past that fails with -EMFILE before it
 * looks at the file: an existing file is left byte for byte as it was (not
 * marked in use, not recovered), and with PERSISTENT_OPEN_CREATE no file
 * is created, not even a partial one. */
int persistent_space_open(const char *path,
                          const struct persistent_options *opts,
                          allocator_space_t **out);

/* Closes a space opened by either call; marks it clean when opened for
 * writing.  No thread may be inside a call on the space.  A transaction
 * left open is rolled back: an automatic one by the close itself (the
 * process may then begin another), any other at the next open. */
int persistent_space_close(allocator_space_t *space);

struct persistent_base {
    uint64_t base;           /* mapping address */
    uint64_t size;           /* bytes of address space reserved there */
    uint64_t generation;
};

struct persistent_info {
    uint32_t format_major, format_minor;
    uint32_t page_size;          /* run granularity */
    uint32_t superblock_size;    /* target superblock size */
    uint64_t file_size;          /* bytes in the file now */
    uint64_t capacity;           /* bytes of pages now */
    uint64_t max_capacity;       /* bytes of pages at the maximum size */
    uint64_t meta_size;          /* bytes of metadata before page 0 */
    uint64_t used_size;          /* high-water mark: bytes up to the end of
                                    the highest page ever used (recorded at
                                    growth and close) */
    uint64_t generation;         /* of the current (writer) mapping */
    uint64_t create_time_ns;
    uint8_t  uuid[16];
    uint32_t growable;           /* 1 if it can grow up to max_capacity */
    uint32_t durability;         /* enum persistent_durability in effect */
    uint32_t clean_at_open;      /* 1 if the last close was clean */
    uint32_t recovered;          /* 1 if this open ran recovery */
    uint32_t open_flags;         /* PERSISTENT_OPEN_* of this handle */
    uint32_t n_bases;            /* entries in bases[], newest first */
    struct persistent_base bases[16];
    uint32_t recovery_skipped;   /* 1: a private open (with recovery) found
                                    the space damaged, or a writer had it
                                    open, and gives the heap as it is on
                                    file instead, allocation disabled;
                                    persistent_errormsg() right after the
                                    open says why */
    uint32_t recorded_durability; /* enum persistent_durability the file
                                    records, its last writer's (a view's
                                    durability above is PROCESS: it
                                    writes nothing back) */
};

int persistent_space_info(allocator_space_t *space,
                          struct persistent_info *info);

/* Makes everything written so far durable (msync + fsync on ordinary files,
 * a drain on persistent memory).  0 or -errno. */
int persistent_sync(allocator_space_t *space);

/* ------------------------------------------------------------------------ */
/* [seed] Allocation                                                          */

/* At least 16-byte aligned; NULL for size 0, for impossible sizes and when
 * the space is exhausted (errno ENOMEM).  A growable space grows for a
 * request only when growth up to its maximum can make room for it: one
 * that cannot fit leaves the file as it was.  Before it reports exhaustion it
 * takes free blocks from other threads' superblocks; when their owners
 * are inside calls it asks them for those and tries again for up to
 * 10 ms (twice for a small block, which then tries a run of pages), so a
 * NULL can take that long.  A thread stopped for good inside a call keeps
 * its own superblocks until the space is opened again; one stopped inside
 * the common case of a malloc or a free keeps only the superblock of the
 * block it is handing out or taking back (none when that block is another
 * thread's), one inside a small malloc's or free's less common case only
 * its superblocks of that block's size class, and one inside a large
 * block's malloc, free or in-place realloc, or calloc's zeros or
 * realloc's copy, none (a call that has found no room left keeps all). */
void *persistent_malloc(allocator_space_t *space, size_t size);

/* NULL is a no-op.  A pointer that is not a live block of this space
 * (interior, foreign, already free), or a root's block (free it with
 * persistent_root_remove), is reported through the error hook and the heap
 * is left as it was. */
void persistent_free(allocator_space_t *space, void *ptr);

/* Whether persistent_free(space, ptr), called now by this thread, would
 * free the block: 0 if so (and for NULL), else why not, and nothing is
 * reported or changed.  The codes are those free's report would carry:
 * PERSISTENT_E_BAD_POINTER (not a block of the program's in this space,
 * or a large one freed already), PERSISTENT_E_DOUBLE_FREE (a small block
 * freed already), PERSISTENT_E_ROOT_BLOCK, PERSISTENT_E_TX_BLOCK (a block
 * an open transaction allocated, frees or holds a snapshot in, the
 * caller's own included); and where free reports
 * PERSISTENT_E_BAD_POINTER for a thread that cannot free here: -EROFS (a
 * space where nothing is freed: read-only, or allocation disabled),
 * -EAGAIN (too many threads in the space), -EMFILE (this thread uses too
 * many spaces), -EINVAL (no space).  For code that must know before it
 * destroys what the block holds (the C++ layer's free runs ~T only when
 * this says 0).  The answer is as of the call: another thread may free
 * the block, or make it a root's, right after. */
int persistent_free_check(allocator_space_t *space, const void *ptr);

/* Resizes *ptr in place when it can, else moves and copies.  Returns false,
 * with *ptr unchanged and still valid, for a NULL *ptr, size 0, when no
 * room is left, or when a root's block would have to move (misuse, to the
 * error hook).  A shrink never fails for want of room: where the smaller
 * block cannot be had, the block stays where it is (a large one cut to the
 * pages it needs).  [seed: persistent_realloc(space, ptr, size) on an
 * lvalue] */
bool persistent_realloc_impl(allocator_space_t *space, void **ptr,
                             size_t new_size);
#define persistent_realloc(space, ptr, new_size) \
    persistent_realloc_impl((space), (void **)&(ptr), (new_size))

/* [seed] Allocates a root: a zeroed block found again by its tag after a
 * restart with persistent_find_root().  NULL with errno EEXIST if the tag
 * already names a root (see persistent_root_get). */
void *persistent_malloc_root(allocator_space_t *space, uint64_t root_class,
                             size_t size);

/* [seed] The root with this tag, or NULL. */
void *persistent_find_root(allocator_space_t *space, uint64_t root_class);

/* ------------------------------------------------------------------------ */
/* Richer allocation                                                          */

/* Zeroed n * size bytes; NULL with errno ENOMEM on overflow. */
void *persistent_calloc(allocator_space_t *space, size_t n, size_t size);

/* alignment: a power of two up to 2 MiB.  EINVAL otherwise. */
void *persistent_aligned_alloc(allocator_space_t *space, size_t alignment,
                               size_t size);

/* Bytes usable at ptr (>= the size asked for); 0 for NULL or a pointer that
 * is not a live block. */
size_t persistent_usable_size(allocator_space_t *space, const void *ptr);

/* libc-style realloc: NULL ptr allocates; size 0 frees and returns NULL;
 * NULL on failure with ptr untouched; a shrink returns ptr where there is
 * no room for a smaller block, as persistent_realloc. */
void *persistent_reallocate(allocator_space_t *space, void *ptr, size_t size);

/* ------------------------------------------------------------------------ */
/* Roots                                                                      */

/* The root with this tag, created zeroed with size bytes if absent.  Two
 * threads racing get the same block; a root is never visible before it is
 * zeroed.  *created (may be NULL) tells whether this call made it.  An
 * existing root is returned as it is, whatever its size, also on a space
 * open read-only; creating one there fails with EROFS. */
void *persistent_root_get(allocator_space_t *space, uint64_t tag, size_t size,
                          bool *created);

/* Makes block (a live block of this space, already filled in) the root with
 * this tag, unless the tag names a root already.  Returns the root: block
 * itself when it was published, else the root that was there first, and
 * then block is still the caller's to free.  This is how an object is
 * built before anyone can see it: allocate, initialise, persistent_persist
 * what must be durable (nothing of the block is written back here), then
 * publish; racing threads each build their own and all get the one that
 * won.  A block allocated but not yet published when the process dies
 * leaks, as any unpublished allocation does (persistent_alloc_into is the
 * leak-free way to allocate into a location).  A block is the root of one
 * tag at most: publishing another tag's root is misuse (error hook,
 * PERSISTENT_E_ROOT_BLOCK).  A root's block cannot be freed, moved by a
 * realloc or freed from a location; persistent_root_remove frees it.  NULL
 * with errno: EINVAL (block is not a live block, or another tag's root),
 * EROFS (read-only space), ENOMEM (no room for the tag's slot). */
void *persistent_root_publish(allocator_space_t *space, uint64_t tag,
                              void *block);

/* Removes the root and frees its block.  0, or -ENOENT, or -EBUSY while
 * an open transaction has a snapshot in the block (error hook). */
int persistent_root_remove(allocator_space_t *space, uint64_t tag);

/* Iteration over live roots, in no particular order.  Zero-initialise the
 * iterator; each call returns 1 and one root, or 0 at the end.  Roots added
 * or removed during the walk may or may not be seen. */
struct persistent_root_iter {
    uint64_t table;
    uint64_t slot;
};
int persistent_root_next(allocator_space_t *space,
                         struct persistent_root_iter *it, uint64_t *tag,
                         void **ptr);

/* ------------------------------------------------------------------------ */
/* Publishing calls: crash-atomic with a location inside the space.          */
/* After a crash at any point, either both the block and *dest changed or     */
/* neither did (the shape of PMDK's pmemobj_alloc(pop, &oid, ...)).  dest     */
/* must be an aligned word inside the space's pages (typically a field of a   */
/* block or root).  Return 0 or -errno.                                       */
/*
 * Each call writes its intent in a record of the calling thread (a lane,
 * kept for the thread's life; lanes beyond the space's own are added in
 * tables taken from the heap).  When no lane can be had -- every one held
 * by a live thread, and no room for a table -- the call uses the space's
 * one spare lane, so that a free from a full space does not fail: then
 * -ENOMEM only while another thread holds that spare lane at the same
 * moment. */

/* Allocates size bytes and stores the block's offset in *dest.  *dest is
 * overwritten; a block it held is not freed. */
int persistent_alloc_into(allocator_space_t *space, persistent_offset_t *dest,
                          size_t size);
/* Frees the block whose offset is in *dest and sets *dest to 0.  The block
 * is taken out of *dest with a CAS: of threads freeing from the same
 * location at once, exactly one frees it.  0 (nothing done) if *dest is 0. */
int persistent_free_from(allocator_space_t *space, persistent_offset_t *dest);
/* Resizes the block in *dest: in place when it can (*dest unchanged), else
 * moves it, copying min(old, size) bytes, and swaps *dest from the old
 * block to the new one with a CAS (-EAGAIN, nothing changed, if another
 * thread changed *dest meanwhile).  A 0 *dest allocates.  A shrink never
 * fails for want of room (as persistent_realloc).  A resize in place
 * takes no CAS: as with realloc and free of one pointer, a program must not
 * resize a location's block while another thread frees it from there
 * (persistent_free_from) or resizes it too. */
int persistent_realloc_into(allocator_space_t *space,
                            persistent_offset_t *dest, size_t size);

/* ------------------------------------------------------------------------ */
/* Transactions: failure-atomic updates of the program's own data           */
/*
 * Between persistent_tx_begin() and persistent_tx_commit() the calling
 * thread's changes to the space happen all or not at all, whatever kills
 * the process (and, in PMEM durability, at power failure): the ranges it
 * snapshotted with persistent_tx_add() before changing them, the blocks it
 * allocated with persistent_tx_alloc() and the frees it asked for with
 * persistent_tx_free().  A transaction that does not commit -- aborted, or
 * cut short by a crash and rolled back at the next open -- leaves every
 * snapshotted range as it was at its snapshot, frees what it allocated and
 * frees nothing else.
 *
 * A transaction belongs to the calling thread.  Threads run their own
 * transactions at the same time and never wait for each other.  It gives
 * failure atomicity, not isolation: data that two threads share needs the
 * program's own synchronisation (as with PMDK's transactions), and a range
 * must not be changed by another thread while a transaction has it
 * snapshotted.  Only changes to snapshotted ranges and to blocks allocated
 * in the transaction are covered; change nothing else in the space inside
 * a transaction.  A block with a snapshotted range is held until the
 * transaction ends: a plain free of it, a realloc that would resize or
 * move it, persistent_root_remove of it (-EBUSY) and another
 * transaction's persistent_tx_free of it are refused (error hook,
 * PERSISTENT_E_TX_BLOCK), since the rollback would write the snapshot
 * where the block no longer is; the transaction itself frees it with
 * persistent_tx_free.  A block several open transactions snapshot is
 * held until the last of them ends.
 *
 * Nested begin/commit pairs flatten into the outermost transaction; an
 * abort at any depth aborts the whole of it.
 *
 * Durability (see README): PROCESS and SYNC keep transactions atomic when
 * the process dies (the log is written before the data, in program
 * order); PMEM also at power failure, with four fences for a transaction
 * of one snapshot, one allocation and any number of small frees (one per
 * snapshot, one per allocation, two for the commit).  A committed
 * transaction is durable at return in PMEM mode, after persistent_sync()
 * in SYNC mode, and as the page cache goes in PROCESS mode.
 *
 * Setup-style calls return 0 or a negative code: -EINVAL (no transaction,
 * a range or block that is not in the space), PERSISTENT_E_BAD_POINTER,
 * -ENOMEM (no room for the log: its next segment is looked for as a
 * malloc of its size would be, other threads' empty superblocks
 * included), -EROFS. */

/* Starts a transaction in the calling thread, or nests in its open one. */
int persistent_tx_begin(allocator_space_t *space);

/* Snapshots [ptr, ptr + len) before the caller changes it.  The range must
 * lie inside one live block (or a block this transaction allocated).
 * Snapshotting a range already snapshotted in this transaction costs
 * nothing.  A block another open transaction frees or allocated is
 * refused (-EINVAL, PERSISTENT_E_TX_BLOCK to the error hook): that
 * transaction's end would free it under the snapshot.  A snapshot of a
 * block another open transaction holds already may be refused with
 * -ENOMEM, nothing changed, when the runtime's table of blocks held more
 * than once has no room for it (1,024 entries, of which the 16 within
 * reach of that block may be taken with far fewer blocks held twice). */
int persistent_tx_add(allocator_space_t *space, void *ptr, size_t len);

/* A block that is permanent when the transaction commits and freed when it
 * aborts; NULL with errno (ENOMEM, EINVAL outside a transaction).  The
 * transaction stays open when it fails: abort it. */
void *persistent_tx_alloc(allocator_space_t *space, size_t size);
void *persistent_tx_zalloc(allocator_space_t *space, size_t size);

/* Frees ptr when the transaction commits (nothing happens if it aborts).
 * ptr must be a live block; a root's block, or one allocated in another
 * thread's open transaction, is refused (error hook, -EINVAL).  After the
 * commit the block is no longer live (a free of it is a double free).  In
 * PROCESS and SYNC durability its memory can be handed out again as soon
 * as the commit returns.  In PMEM durability it is handed out again only
 * once the thread's next transaction that writes anything has committed
 * or aborted, or the thread has ended, or the space is closed, or an
 * allocation of the same thread outside a transaction has found no other
 * room (it then settles them, as the thread's end would): the commit
 * does not wait for the frees' bits to be durable (that rides on the next
 * commit's fence), and until they are a crash makes recovery finish the
 * free, which must not meet a block someone else has been given. */
int persistent_tx_free(allocator_space_t *space, void *ptr);

/* Resizes inside the transaction: the old block is freed at commit, the
 * new one (with the old contents) freed at abort.  NULL with errno; the
 * transaction stays open: abort it, as after a failed persistent_tx_alloc.
 * When the old block's free is refused (a root's block, one held or
 * allocated by another thread's transaction, a double free: error hook,
 * errno EINVAL), the new block is freed with the transaction, whether it
 * commits or aborts, and the old one stays as it is.  A ptr that is no
 * live block (freed, inside a block, outside the space) is reported
 * (PERSISTENT_E_BAD_POINTER) and nothing is allocated: NULL, errno EINVAL. */
void *persistent_tx_realloc(allocator_space_t *space, void *ptr, size_t size);

/* Starts an automatic transaction: every change the calling thread makes
 * to the space until its commit or abort is covered, with no
 * persistent_tx_add -- for code that cannot be changed (a container's).
 * The first write to each page of the space is caught (the pages are
 * read-only while it is open) and the page is snapshotted before the
 * write goes ahead; the allocator's own changes are caught the same way,
 * so persistent_malloc and persistent_free inside it are undone with an
 * abort, and persistent_tx_add/alloc/free work as in any transaction.
 * What it requires: the space is the transaction's while it is open.  It
 * fails with -EBUSY while another thread has a transaction open on the
 * space, or its last transaction freed blocks that are not yet reusable
 * (PMEM durability, see persistent_tx_free: its next transaction that
 * writes anything, its exit or a close settles them), or is inside a call and owns part of the
 * heap (try again), or another automatic transaction is open in the
 * process, or (once per process) another thread is installing the
 * handler that catches the writes (try again).  Another thread's call on the space meanwhile (malloc, free,
 * any call of this API) is reported once through the error hook
 * (PERSISTENT_E_TX_AUTO) and waits for the end before it changes
 * anything; then it goes on, on the heap the commit or the abort left.
 * Another thread's plain write to the space is caught at its page's first
 * write only: it is reported the same way and waits, and goes on after a
 * commit, but after an abort the heap it was working on is gone and the
 * process stops (after the rollback is durable, so the space is whole
 * when opened again); to a page the transaction has already written it
 * cannot be caught, and an abort undoes it.  Writes by the kernel into the
 * space (read(2) into a block) fail with EFAULT until their page has been
 * written once.
 * Each page's snapshot needs log room, taken from pages that were free at
 * the begin, growing a growable space when there are none; the begin
 * makes sure of room for the first page (-ENOMEM, nothing changed, when
 * even that cannot be had), and a later write whose page finds no room
 * at all (the space full at its maximum) stops the process, and the next
 * open rolls the transaction back.
 * Under valgrind, run it with --px-default=allregs-at-mem-access: a store
 * that faults is resumed after the handler, and by default valgrind may
 * resume it with a stale register (a wrong value written).
 * Nested begins flatten; commit and abort end it as any transaction. */
int persistent_tx_begin_auto(allocator_space_t *space);

/* Ends the innermost begin; the outermost one makes the transaction
 * permanent.  0, or -EINVAL with no transaction open. */
int persistent_tx_commit(allocator_space_t *space);

/* Undoes the whole transaction (every level): snapshots restored byte for
 * byte, its allocations freed, its frees dropped.  0, or -EINVAL with no
 * transaction open. */
int persistent_tx_abort(allocator_space_t *space);

/* Nesting depth of the calling thread's transaction in space: 0 = none. */
int persistent_tx_depth(allocator_space_t *space);

/* ------------------------------------------------------------------------ */
/* Statistics and checking                                                    */

#define PERSISTENT_N_CLASSES 44

struct persistent_stats {
    uint64_t live_bytes;          /* usable bytes of live blocks */
    uint64_t live_blocks;
    uint64_t small_live_bytes, large_live_bytes;
    uint64_t superblocks, superblock_bytes;
    uint64_t empty_superblocks;   /* held, with no live block: a thread's
                                     current one for a class, the ones a
                                     thread emptied and keeps for its next
                                     blocks of their class (up to 4 MiB, a
                                     sixteenth of a smaller space, per
                                     thread), partial ones nobody took */
    uint64_t large_runs, large_bytes;
    uint64_t free_bytes;          /* pages in no run */
    uint64_t file_size;           /* footprint on disk */
    uint64_t capacity;
    uint32_t n_classes;
    uint32_t reserved;
    struct {
        uint32_t block_size;
        uint32_t superblocks;
        uint64_t live_blocks;
    } cls[PERSISTENT_N_CLASSES];
};

/* A walk of the heap: exact when no thread is allocating. */
int persistent_stats_get(allocator_space_t *space, struct persistent_stats *st);

/* What fragmentation looks like: the free pages as maximal runs (pages in
 * no block), counted by length in buckets of powers of two, and how full
 * each class's superblocks are. */
#define PERSISTENT_RUN_BUCKETS 32
struct persistent_frag {
    uint64_t free_runs[PERSISTENT_RUN_BUCKETS]; /* runs of free pages whose
                                                   length in pages is in
                                                   [2^i, 2^(i+1)); the last
                                                   bucket also holds longer */
    uint64_t n_free_runs;
    uint64_t free_pages;
    uint64_t largest_free_run;    /* in pages */
    uint64_t pages;               /* pages of the space (its capacity) */
    uint32_t page_size;
    uint32_t n_classes;
    struct {
        uint32_t block_size;
        uint32_t superblocks;
        uint64_t live_blocks;
        uint64_t capacity_blocks; /* blocks its superblocks hold in all */
    } cls[PERSISTENT_N_CLASSES];
};

/* A walk of the heap, as persistent_stats_get: 0 or a negative code. */
int persistent_frag_get(allocator_space_t *space, struct persistent_frag *fr);

struct persistent_check_report {
    uint64_t n_errors;
    uint64_t runs, superblocks, large_runs;
    uint64_t live_blocks, live_bytes;
    uint64_t roots;
    uint64_t pending_remote_frees;  /* freed, not yet collected */
    uint64_t in_flight_lanes;       /* publishing calls in flight (and
                                       lane tables linked, not yet
                                       committed: a writer's open
                                       commits them) */
    uint64_t open_transactions;     /* transactions the next writer's open
                                       rolls back or finishes (or that are
                                       open now, on a live space) */
    uint64_t orphan_bits;           /* crash leftovers (bits of no live
                                       run or block) a writer's open clears;
                                       harmless, not errors */
    char first_error[256];
};

/* Read-only full consistency check of the header, the run bitmaps, every
 * superblock, the roots and the lanes, by the same rules a writer's open
 * verifies (a space check calls consistent opens for writing; one a writer
 * refuses is reported here).  Writes nothing and terminates on any file,
 * so it works on a read-only or private (forensic) mapping of a damaged
 * one.  On a read-only or private view of a space left with an unfinished
 * transaction and no writer, the heap is judged after the rollback a
 * writer's open would do (tried on a copy-on-write mapping, nothing
 * written), as the writer judges it; for that while, the view holds a
 * shared flock(2) on a descriptor of its own, and a writer's open waits
 * for it (up to two seconds) before it calls the space busy.  A live writer's open
 * transactions are not rolled back by anybody: they are judged as they
 * are.  A read-only view, or a private one that does not recover, of a
 * file that no writer has open before or after the pass (nor opened and
 * closed meanwhile) holds still: one pass is the verdict.
 * On a space being changed meanwhile (other threads, or a writer in
 * another process) a pass can read a step half done; check then pauses
 * (2, 4, 8 ... ms) and looks again, and reports damage only when three
 * passes in a row find the same error, or six find some (passes during
 * which the space grew do not count).  A view of a file a writer's open
 * would roll a transaction back in cannot try that rollback while a writer
 * has the space or waits for it; a pass that finds the heap damaged as it
 * is then gives no verdict either (the writer may not have rolled back
 * yet what a crash left).  Returns 0 when consistent,
 * PERSISTENT_E_CORRUPT when report->n_errors > 0, and PERSISTENT_E_BUSY
 * (report->n_errors > 0, first_error saying so) when no verdict was
 * reached: a writer kept the space changing for 64 passes, or kept such
 * a rollback from being tried for 16. */
int persistent_check(allocator_space_t *space,
                     struct persistent_check_report *report);

/* As persistent_check, calling progress(done, total, arg) from the calling
 * thread now and then during each pass (done and total in pages of the
 * space), and once with done == total when a pass ends: for a progress
 * display on a large space. */
int persistent_check_progress(allocator_space_t *space,
                              struct persistent_check_report *report,
                              void (*progress)(uint64_t done, uint64_t total, void *arg),
                              void *arg);

/* ------------------------------------------------------------------------ */
/* Misuse reporting                                                           */

/* Called for each detected misuse: code is PERSISTENT_E_DOUBLE_FREE,
 * PERSISTENT_E_BAD_POINTER, PERSISTENT_E_ROOT_BLOCK or
 * PERSISTENT_E_TX_BLOCK with ptr the offending pointer, or (once per space) PERSISTENT_E_FILE_LOST with ptr
 * the space.  Process-wide; NULL
 * restores the default, which prints one line to stderr.  The hook runs on
 * the thread that made the call, sometimes in the middle of it (a double
 * free found while collecting other threads' frees): it may record, count
 * or abort, but must not call this library on the same space, since a
 * call made there ends the outer call's claim on the thread's superblocks
 * early, and another thread may then take them while the outer call goes
 * on writing to them. */
typedef void persistent_error_fn(allocator_space_t *space, int code,
                                 const void *ptr, const char *msg, void *arg);
void persistent_error_hook_set(persistent_error_fn *fn, void *arg);

/* ------------------------------------------------------------------------ */
/* Persistence primitives                                                     */

/* Write back and fence addr..addr+len with the method chosen for this
 * process: CLWB, else CLFLUSHOPT, else CLFLUSH (by CPUID), or as forced by
 * PERSISTENT_MEM_FLUSH=clwb|clflushopt|clflush|msync|none. */
void persistent_persist(const void *addr, size_t len);
void persistent_flush(const void *addr, size_t len);
void persistent_drain(void);
/* "clwb", "clflushopt", "clflush", "msync", "none" ... */
const char *persistent_flush_method(void);

#ifdef __cplusplus
}
#endif

#endif

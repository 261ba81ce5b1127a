/* Roots: a lock-free table from 64-bit tags to blocks, kept in the file.
 *
 * Table 0 lives in the metadata.  When a tag's probe window there holds
 * other keys only, the search moves on to overflow tables allocated from
 * the heap and chained through next_off (created with a CAS; the loser
 * frees its copy).  A slot that once held a key keeps it, so a probe that
 * meets an empty slot proves the tag absent, and two threads inserting the
 * same tag meet in the same slot.  Tag 0 (the empty key) has its own word in
 * the header.
 *
 * A slot's value is the offset of the root's block, set from 0 with a CAS:
 * racing creators agree on the first block and the others free theirs, so
 * both get the same root.  The block is zeroed (and persisted) before the
 * CAS publishes it.
 *
 * A root's block belongs to its root: freeing it would leave the root
 * naming a free block, and making it the root of a second tag would let
 * one removal free it under the other.  Both are refused (G5: reported to
 * the error hook, nothing changed).  One volatile bit per 16-byte granule
 * of the pages (rt->rootmark) marks where a root's block starts, claimed
 * with an atomic OR before the root's value is published, so of two
 * threads making one block a root only one succeeds; each run counts its
 * marks (struct pm_sbctl.marks) so that a free looks at the bits only
 * in the rare run that holds one (a transaction's holds are flagged
 * there, not counted: pm_hold_at).  Rebuilt from the roots at every open.
 * A free that races with the publication of the same block (a use after
 * publish in the program) is not caught.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define PROBE 32u

struct table {
    struct pm_root_slot *slot;
    uint64_t cap;
    pm_atomic_u64 *next;
};

/* ---- marks: roots' blocks, and blocks of open transactions (tx.c) ---- */

bool pm_marked(struct pm_rt *rt, pm_atomic_u64 *bits, uint64_t off)
{
    if (bits == NULL || !pm_in_data(rt, off, 1))
        return false;
    uint64_t g = (off - rt->data_off) >> 4;
    return (pm_load_acquire(&bits[g >> 6]) >> (g & 63)) & 1;
}

/* A table word's key (its block's granule + 1, shifted) and its count. */
static inline uint64_t cohold_key_of(uint64_t w)
{
    return (w >> PM_COHOLD_BITS) << PM_COHOLD_BITS;
}

static inline uint64_t cohold_count_of(uint64_t w)
{
    return w & ((UINT64_C(1) << PM_COHOLD_BITS) - 1);
}

/* The holds of a block beyond the first (pm_hold_at).  A block's entries
 * are in the PM_COHOLD_WINDOW slots from its home on; it may have more
 * than one there (two threads adding its first count at once take two
 * empty slots), and its count is their sum, so any of them may take a
 * release.  A slot whose count drops to 0 is empty again at once: every
 * look goes through the whole window, so no entry is ever missed for an
 * empty slot before it.  rt->n_cohold goes up before a count is added and
 * down after one is taken, so that a look finding it 0 finds no count
 * that a finished hold made. */
bool pm_cohold_add(struct pm_rt *rt, uint64_t off)
{
    uint64_t key = pm_cohold_key(rt, off);
    uint32_t home = pm_cohold_home(key);
    pm_fetch_add_seq_cst(&rt->n_cohold, UINT64_C(1));
    for (;;) {
        uint32_t empty = UINT32_MAX;
        for (uint32_t i = 0; i < PM_COHOLD_WINDOW; i++) {
            pm_atomic_u64 *e = &rt->cohold[(home + i) % PM_COHOLD_SLOTS];
            uint64_t w = pm_load_seq_cst(e);
            if (w == 0) {
                if (empty == UINT32_MAX)
                    empty = (home + i) % PM_COHOLD_SLOTS;
                continue;
            }
            if (cohold_key_of(w) != key)
                continue;
            /* a count never reaches the key: at most PM_MAX_RECS */
            while (cohold_key_of(w) == key && !pm_cas_strong_seq_cst(e, &w, w + 1))
                ;
            if (cohold_key_of(w) == key)
                return true;
        }
        if (empty == UINT32_MAX) {
            pm_fetch_sub_seq_cst(&rt->n_cohold, UINT64_C(1));
            return false;           /* no room in the block's window */
        }
        uint64_t zero = 0;
        if (pm_cas_strong_seq_cst(&rt->cohold[empty], &zero, key | 1u))
            return true;
        /* the slot was taken meanwhile: look again */
    }
}

/* One of the counts of the block at off taken off: false when it has none. */
bool pm_cohold_take(struct pm_rt *rt, uint64_t off)
{
    uint64_t key = pm_cohold_key(rt, off);
    uint32_t home = pm_cohold_home(key);
    for (uint32_t i = 0; i < PM_COHOLD_WINDOW; i++) {
        pm_atomic_u64 *e = &rt->cohold[(home + i) % PM_COHOLD_SLOTS];
        uint64_t w = pm_load_seq_cst(e);
        while (cohold_key_of(w) == key && w != key) {
            uint64_t next = cohold_count_of(w) == 1 ? 0 : w - 1;
            if (pm_cas_strong_seq_cst(e, &w, next)) {
                pm_fetch_sub_seq_cst(&rt->n_cohold, UINT64_C(1));
                return true;
            }
        }
    }
    return false;
}

uint64_t pm_cohold_count(struct pm_rt *rt, uint64_t off)
{
    uint64_t key = pm_cohold_key(rt, off), n = 0;
    uint32_t home = pm_cohold_home(key);
    for (uint32_t i = 0; i < PM_COHOLD_WINDOW; i++) {
        uint64_t w = pm_load_seq_cst(&rt->cohold[(home + i) % PM_COHOLD_SLOTS]);
        if (cohold_key_of(w) == key)
            n += cohold_count_of(w);
    }
    return n;
}

/* Whether an open transaction holds the block at off for its snapshots. */
bool pm_snap_held(struct pm_rt *rt, uint64_t off)
{
    return rt->snapmark != NULL && pm_in_data(rt, off, 1) && pm_snap_held_in(rt, off);
}

int pm_block_held_slow(struct pm_rt *rt, uint64_t off)
{
    if (pm_marked(rt, rt->ownmark, off))
        return PERSISTENT_E_BAD_POINTER;        /* not the program's */
    if (pm_marked(rt, rt->rootmark, off))
        return PERSISTENT_E_ROOT_BLOCK;
    if (pm_marked(rt, rt->txmark, off) || pm_snap_held(rt, off))
        return PERSISTENT_E_TX_BLOCK;
    return 0;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static void table0(struct pm_rt *rt, struct table *t)
{
    const struct pm_fixed *f = &rt->fixed;
    t->slot = (struct pm_root_slot *)(rt->base + f->roots_off);
    t->cap = f->roots_cap;
    t->next = &rt->hdr->live.roots_next_off;
}

/* The overflow table at off that follows one of capacity prev_cap, or
 * false if off does not hold one (verify.c: the same rule check uses). */
static bool table_at(struct pm_rt *rt, uint64_t off, uint64_t prev_cap, struct table *t)
{
    uint64_t cap = pm_root_next_cap(prev_cap);
    struct pm_root_table *tb = pm_root_table_at(rt, off, cap);
    if (tb == NULL)
        return false;
    t->slot = tb->slot;
    t->cap = cap;
    t->next = &tb->next_off;
    return true;
}

static void table_init(void *blk, void *arg)
{
    uint64_t cap = *(const uint64_t *)arg;
    struct pm_root_table *tb = blk;
    memset(tb, 0, sizeof *tb + cap * sizeof(struct pm_root_slot));
    tb->magic = PM_ROOT_TABLE_MAGIC;
    tb->cap = cap;
}

/* Called inside an operation (root_slot_op).  Made and linked through the
 * thread's lane (pub_table_create): a table allocated and then linked
 * leaked when the process died between the two. */
static uint64_t new_table(struct pm_rt *rt, struct pm_trec *rec,
                          pm_atomic_u64 *link, uint64_t cap)
{
    size_t size = sizeof(struct pm_root_table) + cap * sizeof(struct pm_root_slot);
    return pub_table_create(rt, rec, link, size, table_init, &cap);
}

/* The value word for tag, creating its slot if create (then inside an
 * operation: root_slot_op); NULL if absent (or, creating, if no table could
 * be allocated). */
static pm_atomic_u64 *val_find(struct pm_rt *rt, struct pm_trec *rec,
                               uint64_t tag, bool create)
{
    if (tag == 0)
        return &rt->hdr->live.root0_val;
    struct table t;
    table0(rt, &t);
    uint64_t h = mix(tag);
    for (;;) {
        uint64_t n = t.cap < PROBE ? t.cap : PROBE;
        for (uint64_t i = 0; i < n; i++) {
            struct pm_root_slot *s = &t.slot[(h + i) & (t.cap - 1)];
            uint64_t k = pm_load_acquire(&s->key);
            if (k == 0) {
                if (!create)
                    return NULL;
                if (pm_cas_strong_acq_rel(&s->key, &k, tag)) {
                    pm_persist(rt, &s->key, sizeof s->key);
                    return &s->val;
                }
            }
            /* a creation depends on the claims it finds (its own tag's,
             * or one it probes past): durable first, since their claimer
             * may not have written them back yet, and a claim lost at a
             * power failure would end a later look before this slot */
            if (create)
                pm_persist(rt, &s->key, sizeof s->key);
            if (k == tag)
                return &s->val;
        }
        uint64_t off = pm_load_acquire(t.next);
        if (off != 0 && create)
            pm_persist(rt, t.next, sizeof *t.next);     /* the same for a link */
        if (off == 0) {
            if (!create)
                return NULL;
            off = new_table(rt, rec, t.next, pm_root_next_cap(t.cap));
            if (off == 0)
                return NULL;
        }
        if (!table_at(rt, off, t.cap, &t))
            return NULL;
    }
}

/* The root block at v, if v is inside the pages.  A writer's roots were
 * verified at open (every root names a live block) and change only through
 * this file; a forensic open of a damaged file gets what the root says,
 * for the reader to judge (persistent_check tells it). */
static void *val_ptr(struct pm_rt *rt, uint64_t v)
{
    return pm_in_data(rt, v, 1) ? rt->base + v : NULL;
}

/* The value word for tag, its slot created if need be, inside an
 * operation: the root table is in the space, and a write there while
 * another thread's automatic transaction is open would be caught as a
 * plain write (and end the process if that transaction aborts); the
 * operation's entry waits for its end instead (pm_auto_gate), and a begin
 * that comes later sees this thread busy and refuses. */
static pm_atomic_u64 *root_slot_op(struct pm_rt *rt, struct pm_trec *rec, uint64_t tag)
{
    pm_op_enter(rt, rec);
    pm_atomic_u64 *val = val_find(rt, rec, tag, true);
    pm_op_end(rec);
    return val;
}

/* Shared by persistent_root_get and persistent_malloc_root.  An existing
 * root is found without a thread record, so a read-only space answers too;
 * only creating one needs the space open for writing. */
static void *root_create(allocator_space_t *space, uint64_t tag, size_t size,
                         bool *created, bool exclusive)
{
    if (created)
        *created = false;
    struct pm_rt *rt = pm_rt_of(space);
    if (rt == NULL) {
        errno = EINVAL;
        return NULL;
    }
    pm_follow(rt);
    pm_atomic_u64 *val = val_find(rt, NULL, tag, false);
    uint64_t v = val ? pm_load_acquire(val) : 0;
    if (v == 0) {
        struct pm_trec *rec = pm_thread_rec(space, &rt);
        if (rec == NULL)
            return NULL;                /* EROFS when read-only */
        val = root_slot_op(rt, rec, tag);
        if (val == NULL) {
            errno = ENOMEM;
            return NULL;
        }
        v = pm_load_acquire(val);
        if (v == 0) {
            void *blk = pub_root_create(rt, rec, val, size, &v);
            if (blk != NULL) {
                if (created)
                    *created = true;
                return blk;
            }
            if (v == 0)
                return NULL;            /* errno from the allocation */
        }
    }
    if (exclusive) {
        errno = EEXIST;
        return NULL;
    }
    return val_ptr(rt, v);
}

void *persistent_root_get(allocator_space_t *space, uint64_t tag, size_t size,
                          bool *created)
{
    return root_create(space, tag, size, created, false);
}

void *persistent_malloc_root(allocator_space_t *space, uint64_t root_class,
                             size_t size)
{
    return root_create(space, root_class, size, NULL, true);
}

/* *bad: a misuse to report (after the operation: the hook is the
 * program's). */
static void *root_publish_op(struct pm_rt *rt, struct pm_trec *rec, uint64_t tag,
                             void *block, int *bad)
{
    uint64_t off = (uint64_t)((char *)block - rt->base);
    /* the tag's root, or a refusal, before any slot is claimed for it: a
     * call refused changes nothing (a race may still claim the slot of a
     * call the checks below refuse: a key with no value, as a creation
     * killed halfway leaves) */
    pm_atomic_u64 *val = val_find(rt, rec, tag, false);
    uint64_t cur = val != NULL ? pm_load_acquire(val) : 0;
    if (cur != 0)
        return val_ptr(rt, cur);
    if (pm_marked(rt, rt->txmark, off) || pm_marked(rt, rt->rootmark, off)) {
        *bad = pm_marked(rt, rt->txmark, off) ? PERSISTENT_E_TX_BLOCK
                                              : PERSISTENT_E_ROOT_BLOCK;
        return NULL;
    }
    val = val_find(rt, rec, tag, true);
    if (val == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    cur = pm_load_acquire(val);
    if (cur != 0)
        return val_ptr(rt, cur);    /* the tag's root, maybe this block */
    if (pm_marked(rt, rt->txmark, off)) {
        /* roots are not transactional: an abort would free it */
        *bad = PERSISTENT_E_TX_BLOCK;
        return NULL;
    }
    if (!pm_root_mark(rt, off)) {
        *bad = PERSISTENT_E_ROOT_BLOCK;
        return NULL;
    }
    if (pm_cas_strong_acq_rel(val, &cur, off)) {
        pm_persist(rt, val, sizeof *val);
        return block;
    }
    /* another root was there first; the caller keeps its block */
    pm_root_unmark(rt, off);
    return val_ptr(rt, cur);
}

void *persistent_root_publish(allocator_space_t *space, uint64_t tag, void *block)
{
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(space, &rt);
    if (rec == NULL)
        return NULL;
    uint64_t seen = pm_auto_settle(rt);
    while (block != NULL && pm_usable(rt, block) == 0 && pm_auto_moved(rt, seen))
        seen = pm_auto_settle(rt);
    if (block == NULL || pm_usable(rt, block) == 0) {
        pm_misuse(rt, PERSISTENT_E_BAD_POINTER, block, "persistent_root_publish");
        errno = EINVAL;
        return NULL;
    }
    /* inside an operation, for the writes to the root table (see
     * root_slot_op) */
    int bad = 0;
    pm_op_enter(rt, rec);
    void *r = root_publish_op(rt, rec, tag, block, &bad);
    pm_op_end(rec);
    if (bad != 0) {
        pm_misuse(rt, bad, block,
                  bad == PERSISTENT_E_TX_BLOCK
                      ? "persistent_root_publish (a block of an open transaction)"
                      : "persistent_root_publish (already another tag's root)");
        errno = EINVAL;
    }
    return r;
}

void *persistent_find_root(allocator_space_t *space, uint64_t root_class)
{
    struct pm_rt *rt = pm_rt_of(space);
    if (rt == NULL)
        return NULL;
    pm_follow(rt);
    pm_atomic_u64 *val = val_find(rt, NULL, root_class, false);
    if (val == NULL)
        return NULL;
    uint64_t v = pm_load_acquire(val);
    return v ? val_ptr(rt, v) : NULL;
}

int persistent_root_remove(allocator_space_t *space, uint64_t tag)
{
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(space, &rt);
    if (rec == NULL)
        return pm_err(-errno, "root remove: %s", persistent_strerror(-errno));
    pm_atomic_u64 *val = val_find(rt, rec, tag, false);
    int r = val ? pub_root_remove(rt, rec, val) : -ENOENT;
    if (r == -ENOENT)
        return pm_err(r, "no root with tag %#llx", (unsigned long long)tag);
    if (r == -EBUSY)
        return pm_err(r, "root remove: an open transaction has a snapshot in the root's block");
    if (r < 0)
        return pm_err(r, "root remove: %s", persistent_strerror(r));
    return 0;
}

int persistent_root_next(allocator_space_t *space, struct persistent_root_iter *it,
                         uint64_t *tag, void **ptr)
{
    struct pm_rt *rt = pm_rt_of(space);
    if (rt == NULL || it == NULL)
        return pm_err(-EINVAL, "not an open space");
    pm_follow(rt);
    for (;;) {
        if (it->table == 0) {
            it->table = 1;
            it->slot = 0;
            uint64_t v = pm_load_acquire(&rt->hdr->live.root0_val);
            if (v != 0 && val_ptr(rt, v)) {
                if (tag)
                    *tag = 0;
                if (ptr)
                    *ptr = val_ptr(rt, v);
                return 1;
            }
        }
        struct table t;
        table0(rt, &t);
        for (uint64_t i = 1; i < it->table; i++) {
            uint64_t off = pm_load_acquire(t.next);
            if (off == 0 || !table_at(rt, off, t.cap, &t))
                return 0;
        }
        while (it->slot < t.cap) {
            struct pm_root_slot *s = &t.slot[it->slot++];
            uint64_t k = pm_load_acquire(&s->key);
            uint64_t v = pm_load_acquire(&s->val);
            if (k != 0 && v != 0 && val_ptr(rt, v)) {
                if (tag)
                    *tag = k;
                if (ptr)
                    *ptr = val_ptr(rt, v);
                return 1;
            }
        }
        it->table++;
        it->slot = 0;
    }
}

/* Open: every root's block is marked (roots verified, pagemap built). */
void pm_root_marks_rebuild(struct pm_rt *rt)
{
    uint64_t v = pm_load_acquire(&rt->hdr->live.root0_val);
    if (v != 0 && pm_in_data(rt, v, 1))
        (void)pm_root_mark(rt, v);
    struct table t;
    table0(rt, &t);
    for (;;) {
        for (uint64_t i = 0; i < t.cap; i++) {
            v = pm_load_acquire(&t.slot[i].val);
            if (v != 0 && pm_load_acquire(&t.slot[i].key) != 0 && pm_in_data(rt, v, 1))
                (void)pm_root_mark(rt, v);
        }
        uint64_t off = pm_load_acquire(t.next);
        if (off == 0 || !table_at(rt, off, t.cap, &t))
            break;
        pm_own_mark(rt, off);
    }
    pub_own_marks(rt);
}

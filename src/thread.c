/* Thread records: each thread that allocates in a space gets a record
 * (its per-class caches, its busy flag, its lane), found again through a
 * one-entry thread-local cache, and handed back when the thread exits.
 *
 * Records are type-stable (never freed while the space is open) so a thief
 * or a late reader can always touch one.  Closing a space invalidates every
 * thread's cached lookup by bumping pm_close_epoch. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "internal.h"

_Thread_local struct pm_tls_cur pm_tls PM_TLS_IE;

#define PM_TLS_SLOTS 16
struct tls_ent {
    uint64_t instance;
    struct pm_rt *rt;
    struct pm_trec *rec;
};
static _Thread_local struct tls_ent tls_ents[PM_TLS_SLOTS];

/* This thread's exit destructor has run: a record it takes now is an
 * orphan (see rec_claim). */
static _Thread_local bool exited;

/* The key whose destructor hands a thread's records back at its exit.
 * Made when the library is loaded, or by the first thread that needs it
 * if a program's constructor called in first; never under pthread_once,
 * which made every other thread's first call wait for a thread stopped
 * inside pthread_key_create (G1; test_heaplock).  A thread that finds it
 * being made by another marks its record an orphan instead: handed back
 * once the thread is gone, as one taken after its destructor ran. */
static pthread_key_t exit_key;
static pm_atomic_u32 key_state;         /* KEY_* */
enum { KEY_NONE, KEY_MAKING, KEY_MADE, KEY_FAILED };

static void thread_exit(void *arg);

static bool key_ready(void)
{
    uint32_t s = pm_load_acquire(&key_state);
    /* (made again after a failure: keys may have been deleted since) */
    if ((s == KEY_NONE || s == KEY_FAILED) &&
        pm_cas_strong_acq_rel(&key_state, &s, (uint32_t)KEY_MAKING)) {
        s = pthread_key_create(&exit_key, thread_exit) == 0 ? KEY_MADE : KEY_FAILED;
        pm_store_release(&key_state, s);
    }
    return s == KEY_MADE;
}

/* (a GNU attribute, in gcc and clang) */
__attribute__((constructor)) static void key_at_load(void)
{
    (void)key_ready();
}

/* A fork's child: a key the parent was making when it forked is made
 * again (no thread of the child is making it; at worst the parent's is
 * left unused). */
void pm_thread_forget_after_fork(void)
{
    uint32_t s = KEY_MAKING;
    (void)pm_cas_strong_acq_rel(&key_state, &s, (uint32_t)KEY_NONE);
}

static void rec_init(struct pm_trec *rec, uint32_t id)
{
    rec->id = id;
    rec->owned_low = pm_anchor_owned_low(id);
    rec->lane = -1;
    rec->seen_revokes = pm_load_acquire(&rec->revokes);
    rec->spare_pages = 0;
    for (uint32_t c = 0; c < PM_N_CLASSES; c++) {
        struct pm_tcache *t = &rec->cls[c];
        memset(t, 0, sizeof *t);
        t->sb = PM_NO_SB;
        t->bsize = pm_class_size(c);
        t->inv = pm_class_inv(t->bsize);
        t->bshift = (uint32_t)__builtin_ctz(t->bsize);
    }
}

/* A record is claimed only by the CAS of its in_use word, whether it is
 * recycled or new: a thread scanning for free records may reach a new id
 * the moment n_recs is bumped. */
static struct pm_trec *rec_claim(struct pm_rt *rt)
{
    for (;;) {
        uint32_t n = pm_load_acquire(&rt->n_recs);
        for (uint32_t id = 1; id <= n && id < PM_MAX_RECS; id++) {
            /* a record taken after its thread's exit destructor ran (glibc
             * frees its own per-thread buffers after the destructors, and
             * a program may make calls there): handed back here, once the
             * thread is gone, by whoever wins its id */
            uint32_t tid = pm_load_acquire(&rt->recs[id].orphan_tid);
            if (tid != 0 && os_thread_gone(tid) &&
                pm_cas_strong_acq_rel(&rt->recs[id].orphan_tid, &tid, 0u))
                pm_thread_release(rt, &rt->recs[id]);
            uint32_t zero = 0;
            if (pm_load_relaxed(&rt->recs[id].in_use) == 0 &&
                pm_cas_strong_acq_rel(&rt->recs[id].in_use, &zero, 1u)) {
                pg_cache_drop(rt, &rt->recs[id]);   /* empty, unless a
                                                       release was missed */
                rec_init(&rt->recs[id], id);
                return &rt->recs[id];
            }
        }
        if (n + 1 >= PM_MAX_RECS)
            return NULL;
        /* open one more id and compete for it like for any other */
        (void)pm_cas_strong_acq_rel(&rt->n_recs, &n, n + 1);
    }
}

/* The calling thread's cached space forgotten: epoch 0 matches no call
 * (pm_close_epoch starts at 1), a NULL space argument included, which a
 * forgotten space of NULL alone would have let through. */
static void tls_forget(void)
{
    pm_tls.space = NULL;
    pm_tls.epoch = 0;
}

static struct pm_rt *rt_lookup(const allocator_space_t *space)
{
    tls_forget();                       /* force the registry path */
    return pm_rt_of(space);
}

struct pm_trec *pm_thread_attach(allocator_space_t *space, struct pm_rt **rtp)
{
    /* read the epoch before the lookup: a close after this bumps it */
    uint64_t epoch = pm_load_acquire(&pm_close_epoch);
    struct pm_rt *rt = rt_lookup(space);
    if (rt == NULL) {
        errno = EINVAL;
        return NULL;
    }
    if (!rt->can_alloc) {
        errno = EROFS;
        return NULL;
    }
    struct pm_trec *rec = NULL;
    int free_slot = -1;
    for (int i = 0; i < PM_TLS_SLOTS; i++) {
        if (tls_ents[i].instance == rt->instance) {
            rec = tls_ents[i].rec;
            break;
        }
        if (free_slot < 0 && (tls_ents[i].instance == 0 ||
                              !pm_instance_open(tls_ents[i].instance)))
            free_slot = i;
    }
    if (rec == NULL) {
        if (free_slot < 0) {
            errno = EMFILE;             /* this thread uses too many spaces */
            return NULL;
        }
        rec = rec_claim(rt);
        if (rec == NULL) {
            errno = EAGAIN;             /* too many threads in this space */
            return NULL;
        }
        tls_ents[free_slot].instance = rt->instance;
        tls_ents[free_slot].rt = rt;
        tls_ents[free_slot].rec = rec;
        /* (a key past glibc's first 32 may need memory per thread) */
        if (exited || !key_ready() || pthread_setspecific(exit_key, (void *)1) != 0)
            pm_store_release(&rec->orphan_tid, os_thread_id());
    }
    pm_tls.rt = rt;
    pm_tls.rec = rec;
    pm_tls.epoch = epoch;
    pm_tls.space = space;
    *rtp = rt;
    return rec;
}

void pm_thread_release(struct pm_rt *rt, struct pm_trec *rec)
{
    pm_tx_thread_release(rt, rec);      /* an open transaction is aborted */
    sb_thread_exit(rt, rec);
    /* inside an operation, as every change of rt->used: an automatic
     * transaction's abort rebuilds it, and stops the process rather than
     * do that under a thread that is inside one */
    pm_op_enter(rt, rec);
    pg_cache_drop(rt, rec);
    pm_op_end(rec);
    if (rec->lane >= 0) {
        pm_store_release(&rt->lane_owner[rec->lane], 0u);
        rec->lane = -1;
    }
    pm_store_release(&rec->exiting, 0u);
    pm_store_release(&rec->in_use, 0u);
}

static void thread_exit(void *arg)
{
    (void)arg;
    exited = true;
    tls_forget();
    for (int i = 0; i < PM_TLS_SLOTS; i++) {
        if (tls_ents[i].instance == 0)
            continue;
        struct pm_rt *rt = pm_rt_pin(tls_ents[i].instance);
        struct pm_trec *rec = tls_ents[i].rec;
        /* a record this thread took as an orphan (the key not yet made,
         * or its setspecific failed, before it attached to another
         * space) stays one: handed back by rec_claim once the thread is
         * gone, and only there (a review: released here too, it kept its
         * tag, and a later claim handed it back again under its next
         * thread) */
        if (rt != NULL && pm_load_acquire(&rec->orphan_tid) != 0) {
            pm_rt_unpin(rt);
            rt = NULL;
        }
        if (rt != NULL) {
            /* Handing back waits (pm_auto_gate) while another thread's
             * automatic transaction is open on the space, and that thread
             * may be waiting for this one (a join): then the record is
             * left as one taken after the destructors, handed back by
             * whoever claims a record once this thread is gone.  The
             * flag first: a begin that this look misses sees it after its
             * membarrier and refuses until the hand-back is done. */
            pm_store_relaxed(&rec->exiting, 1u);
            pm_compiler_fence();
            if (pm_tx_auto_other(rt, rec)) {
                pm_store_release(&rec->orphan_tid, os_thread_id());
                pm_store_release(&rec->exiting, 0u);
            } else {
                pm_thread_release(rt, rec);
            }
            pm_rt_unpin(rt);
        }
        tls_ents[i].instance = 0;
    }
}

void pm_threads_rt_close(struct pm_rt *rt)
{
    pm_store_release(&rt->closing, 1u);
    pm_rt_pins_drain();                 /* a thread exit handing back */
    /* the closing thread's own entry is dead now; free its slot */
    for (int i = 0; i < PM_TLS_SLOTS; i++)
        if (tls_ents[i].instance == rt->instance)
            tls_ents[i].instance = 0;
    if (pm_tls.rt == rt)
        tls_forget();
}

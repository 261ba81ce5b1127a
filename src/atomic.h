/* Atomic accessors: the only file that includes <stdatomic.h>.
 *
 * Every accessor names its memory order so the order is visible where it is
 * used.  Words that live in the mapped file are declared with the pm_atomic_*
 * types in layout.h; they have the size and alignment of the plain type
 * (checked below), so the on-file format does not depend on this header.
 */
#ifndef PM_ATOMIC_H
#define PM_ATOMIC_H

#include <stdatomic.h>
#include <stdint.h>

typedef _Atomic uint64_t pm_atomic_u64;
typedef _Atomic uint32_t pm_atomic_u32;
typedef _Atomic uint16_t pm_atomic_u16;
typedef _Atomic uintptr_t pm_atomic_uptr;

_Static_assert(sizeof(pm_atomic_u64) == 8, "atomic u64 must be a plain word");
_Static_assert(_Alignof(pm_atomic_u64) == 8, "atomic u64 must be 8-aligned");
_Static_assert(sizeof(pm_atomic_u32) == 4, "atomic u32 must be a plain word");

#define pm_load_relaxed(p)       atomic_load_explicit((p), memory_order_relaxed)
#define pm_load_acquire(p)       atomic_load_explicit((p), memory_order_acquire)
#define pm_load_seq_cst(p)       atomic_load_explicit((p), memory_order_seq_cst)
#define pm_store_relaxed(p, v)   atomic_store_explicit((p), (v), memory_order_relaxed)
#define pm_store_release(p, v)   atomic_store_explicit((p), (v), memory_order_release)
#define pm_store_seq_cst(p, v)   atomic_store_explicit((p), (v), memory_order_seq_cst)

#define pm_exchange_acq_rel(p, v) \
    atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define pm_fetch_or_acq_rel(p, v) \
    atomic_fetch_or_explicit((p), (v), memory_order_acq_rel)
#define pm_fetch_or_seq_cst(p, v) \
    atomic_fetch_or_explicit((p), (v), memory_order_seq_cst)
#define pm_fetch_and_acq_rel(p, v) \
    atomic_fetch_and_explicit((p), (v), memory_order_acq_rel)
#define pm_fetch_and_seq_cst(p, v) \
    atomic_fetch_and_explicit((p), (v), memory_order_seq_cst)
#define pm_fetch_add_relaxed(p, v) \
    atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define pm_fetch_add_acq_rel(p, v) \
    atomic_fetch_add_explicit((p), (v), memory_order_acq_rel)
#define pm_fetch_sub_acq_rel(p, v) \
    atomic_fetch_sub_explicit((p), (v), memory_order_acq_rel)
#define pm_fetch_sub_seq_cst(p, v) \
    atomic_fetch_sub_explicit((p), (v), memory_order_seq_cst)
#define pm_fetch_add_seq_cst(p, v) \
    atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)

#define pm_cas_weak_acq_rel(p, expp, v) \
    atomic_compare_exchange_weak_explicit((p), (expp), (v), \
        memory_order_acq_rel, memory_order_acquire)
#define pm_cas_strong_acq_rel(p, expp, v) \
    atomic_compare_exchange_strong_explicit((p), (expp), (v), \
        memory_order_acq_rel, memory_order_acquire)
#define pm_cas_strong_seq_cst(p, expp, v) \
    atomic_compare_exchange_strong_explicit((p), (expp), (v), \
        memory_order_seq_cst, memory_order_seq_cst)

/* A full fence, and a compiler-only fence for code that is ordered with
 * another thread by membarrier(2) rather than by instructions of its own. */
#define pm_fence_seq_cst()       atomic_thread_fence(memory_order_seq_cst)
#define pm_fence_acquire()       atomic_thread_fence(memory_order_acquire)
#define pm_compiler_fence()      atomic_signal_fence(memory_order_seq_cst)

#endif

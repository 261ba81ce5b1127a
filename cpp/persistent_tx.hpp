/* persistent_tx.hpp: transactions from C++ (see persistent_tx_* in
 * persistent_mem.h for what they guarantee: all or nothing, whatever kills
 * the process; failure atomicity, not isolation).
 *
 *   Transaction   RAII: begins in its constructor; commit() makes it
 *                 permanent; a Transaction destroyed without commit()
 *                 (an exception, an early return) aborts.  Nests: inner
 *                 ones flatten into the outermost.
 *   transaction(space, fn)
 *                 runs fn() in a transaction: commits when it returns,
 *                 aborts and rethrows when it throws; returns what fn does.
 *   tx_add(space, obj) / tx_add(space, ptr, n)
 *                 snapshot an object (the whole of it: an array, a pointer
 *                 field rather than its target), or the n objects at ptr,
 *                 before changing it.
 *   tx_new<T>(space, args...) / tx_delete(space, p)
 *                 construct in a block allocated in the transaction (freed
 *                 if it aborts, or if the constructor throws; T aligned to
 *                 16 bytes at most); free at commit (T trivially
 *                 destructible: see tx_delete).
 *
 * Errors throw TxError (a SpaceError: std::system_error with the
 * library's code); allocations that fail throw std::bad_alloc.  Either
 * thrown inside transaction() aborts the transaction. */
#ifndef PERSISTENT_MEM_PERSISTENT_TX_HPP
#define PERSISTENT_MEM_PERSISTENT_TX_HPP

#include "persistent_space.hpp"

#include <cstddef>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

namespace persistent_mem {

class TxError : public SpaceError {
public:
    TxError(int code, const std::string &what) : SpaceError(code, what) {}
};

namespace detail {
inline void tx_check(int r, const char *what)
{
    if (r != 0)
        throw TxError(r, std::string(what) + ": " + persistent_errormsg());
}
} // namespace detail

class Transaction {
public:
    explicit Transaction(allocator_space_t *space) : space_(space)
    {
        detail::tx_check(persistent_tx_begin(space_), "persistent_tx_begin");
        depth_ = persistent_tx_depth(space_);
    }
    template <class S, class = decltype(std::declval<const S &>().unwrap())>
    explicit Transaction(const S &space) : Transaction(space.unwrap())
    {
    }
    Transaction(const Transaction &) = delete;
    Transaction &operator=(const Transaction &) = delete;

    /* Ends this level: the outermost one makes the transaction permanent. */
    void commit()
    {
        if (done_)
            throw TxError(-EINVAL, "Transaction::commit: already ended");
        done_ = true;
        detail::tx_check(persistent_tx_commit(space_), "persistent_tx_commit");
    }

    /* Undoes the whole transaction (every level) now. */
    void abort() noexcept
    {
        if (!done_) {
            done_ = true;
            (void)persistent_tx_abort(space_);
        }
    }

    /* Aborts unless committed; an inner level whose transaction an inner
     * abort already ended does nothing. */
    ~Transaction()
    {
        if (!done_ && persistent_tx_depth(space_) >= depth_)
            (void)persistent_tx_abort(space_);
    }

    allocator_space_t *space() const noexcept { return space_; }

private:
    allocator_space_t *space_;
    int depth_ = 0;
    bool done_ = false;
};

/* Runs fn() in a transaction on space: committed when fn returns, aborted
 * (and the exception rethrown) when it throws.  Returns what fn returns,
 * as it returns it: a reference stays a reference to the same object. */
template <class F>
auto transaction(allocator_space_t *space, F &&fn) -> std::invoke_result_t<F>
{
    using R = std::invoke_result_t<F>;
    Transaction tx(space);
    if constexpr (std::is_void_v<R>) {
        std::forward<F>(fn)();
        tx.commit();
    } else if constexpr (std::is_reference_v<R>) {
        /* bound, not copied: a copy would be a local returned by reference */
        R result = std::forward<F>(fn)();
        tx.commit();
        return std::forward<R>(result);
    } else {
        R result = std::forward<F>(fn)();
        tx.commit();
        return result;
    }
}

template <class S, class F, class = decltype(std::declval<const S &>().unwrap())>
auto transaction(const S &space, F &&fn) -> std::invoke_result_t<F>
{
    return transaction(space.unwrap(), std::forward<F>(fn));
}

/* Snapshots the n objects at p before they change.  The count has no
 * default: with one, tx_add(space, x) on a pointer x (a raw pointer member)
 * or on an array (which decays) would snapshot what x points at, or its
 * first element, rather than x itself. */
template <class T> void tx_add(allocator_space_t *space, T *p, std::size_t n)
{
    /* bytes restored where they were: right for any T that lives in the
     * space (PersistentPtr is relative to its own address) */
    detail::tx_check(persistent_tx_add(space,
                                       const_cast<void *>(static_cast<const volatile void *>(p)),
                                       n * sizeof(T)),
                     "persistent_tx_add");
}

/* Snapshots obj itself, all sizeof(obj) bytes: a whole array, the pointer
 * field and not its target. */
template <class T> void tx_add(allocator_space_t *space, T &obj)
{
    tx_add(space, std::addressof(obj), 1);
}

/* A T constructed in a block of the open transaction: freed if it aborts.
 * If T's constructor throws, the block is given back to the transaction
 * (freed at its end whichever way it ends) and the exception propagates,
 * so a caller that catches it and commits leaks nothing. */
template <class T, class... Args> T *tx_new(allocator_space_t *space, Args &&...args)
{
    /* persistent_tx_alloc promises 16 bytes, and an over-aligned block
     * could not be given to persistent_tx_free by the object's address */
    static_assert(alignof(T) <= 16, "tx_new: T must not need more than 16-byte alignment");
    void *p = persistent_tx_alloc(space, sizeof(T));
    if (p == nullptr)
        throw std::bad_alloc();
    return detail::construct_or_undo<T>(
        p, [space, p] { (void)persistent_tx_free(space, p); }, std::forward<Args>(args)...);
}

/* Ends *p's lifetime and frees its block when the transaction commits; an
 * abort leaves the object as it was.  Only for a trivially destructible T:
 * a destructor that does anything would do it now, outside what an abort
 * undoes (a container member's buffer freed by a plain free, still
 * pointed to by the object an abort brings back), and deferring it to the
 * commit would make the commit and the destructor's frees two steps a
 * crash can split.  An object that owns blocks through PersistentPtr
 * members (trivially destructible) is deleted by tx_delete of what they
 * point to, then of the object.  One whose destructor must run (a
 * container member) is freed with PersistentSpace::free inside an
 * automatic transaction (persistent_tx_begin_auto), where the plain frees
 * of the destructor are undone by an abort too.  Throws TxError when
 * the library refuses the free (p is not a live block, or another
 * transaction holds it), with nothing changed. */
template <class T> void tx_delete(allocator_space_t *space, T *p)
{
    static_assert(std::is_trivially_destructible<T>::value,
                  "tx_delete: T must be trivially destructible (see persistent_tx.hpp)");
    if (p == nullptr)
        return;
    detail::tx_check(persistent_tx_free(space, const_cast<void *>(
                                                   static_cast<const volatile void *>(p))),
                     "persistent_tx_free");
    p->~T();
}

} // namespace persistent_mem

#endif

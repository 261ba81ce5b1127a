/* persistent_space.hpp: typed allocation and roots on a space.
 *
 *   PersistentSpace  a handle to an open space that may itself be stored in a
 *                    space (one word, the encoding of PersistentPtr), with the
 *                    seed's calls: unwrap, find_root<T>, alloc<T>(args...),
 *                    alloc_root<T>, free<T>, restore<T>, plus alloc_array<T>,
 *                    find_or_construct_root<T> and destroy_root<T>.
 *   Space            the owning handle: opens a space in its constructor and
 *                    closes it in its destructor; move-only; the same typed
 *                    calls.
 *
 * Errors.  Space's open and close throw SpaceError (a std::system_error
 * whose code() is the library's negative code in
 * persistent_mem::error_category(), comparable with std::errc where one
 * applies), and each has a noexcept twin that fills a std::error_code
 * instead; info() and sync() throw SpaceError too.
 * The typed calls follow the C API: nullptr with errno set (ENOMEM when the
 * space is full, EINVAL without a space).  A constructor that throws frees
 * its block and the exception propagates.
 */
#ifndef PERSISTENT_MEM_PERSISTENT_SPACE_HPP
#define PERSISTENT_MEM_PERSISTENT_SPACE_HPP

#include "persistent_ptr.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>

#include <unistd.h>

namespace persistent_mem {

/* ------------------------------------------------------------------------ */
/* Errors                                                                     */

namespace detail {
class ErrorCategory final : public std::error_category {
public:
    const char *name() const noexcept override { return "persistent_mem"; }
    std::string message(int code) const override { return persistent_strerror(code); }
    /* -errno codes and their PERSISTENT_E_* equivalents compare equal to
     * std::errc values; the format errors stay in this category. */
    std::error_condition default_error_condition(int code) const noexcept override
    {
        if (code < 0 && code > -1000)
            return std::error_condition(-code, std::generic_category());
        if (code == PERSISTENT_E_BUSY)
            return std::errc::device_or_resource_busy;
        if (code == PERSISTENT_E_READONLY)
            return std::errc::read_only_file_system;
        return std::error_condition(code, *this);
    }
};
} // namespace detail

/* The category of the library's codes (PERSISTENT_E_* and -errno). */
inline const std::error_category &error_category() noexcept
{
    static const detail::ErrorCategory category;
    return category;
}

/* A library return code (negative) as a std::error_code. */
inline std::error_code make_error_code(int code) noexcept
{
    return std::error_code(code, error_category());
}

/* Thrown by Space when the library refuses to open or close a space.
 * what() names the operation and carries persistent_errormsg(). */
class SpaceError : public std::system_error {
public:
    SpaceError(int code, const std::string &what)
        : std::system_error(make_error_code(code), what)
    {
    }
};

/* ------------------------------------------------------------------------ */
/* Typed roots                                                                */

namespace detail {

/* A root made by find_or_construct_root<T> is one block: the T at offset 0
 * (so find_root<T> and C code see the object itself), then a state word.
 *
 *   0          zeroed, nobody constructs it
 *   1          constructed: the T is ready
 *   any other  the token of the process whose thread is constructing it
 */
constexpr std::uint64_t root_ready = 1;

template <class T> constexpr std::size_t root_state_offset() noexcept
{
    return (sizeof(T) + alignof(std::uint64_t) - 1) / alignof(std::uint64_t) *
           alignof(std::uint64_t);
}
template <class T> constexpr std::size_t root_block_size() noexcept
{
    return root_state_offset<T>() + sizeof(std::uint64_t);
}

static_assert(sizeof(std::atomic<std::uint64_t>) == sizeof(std::uint64_t) &&
                  std::atomic<std::uint64_t>::is_always_lock_free,
              "the state word is a plain lock-free 64-bit atomic");

inline std::atomic<std::uint64_t> *root_state(void *block, std::size_t offset) noexcept
{
    /* the word lies in zeroed memory of the root: an atomic<uint64_t> is a
     * lock-free uint64_t, so a zero word is a valid atomic holding 0 */
    return reinterpret_cast<std::atomic<std::uint64_t> *>(static_cast<char *>(block) + offset);
}

inline std::uint64_t mix64(std::uint64_t x) noexcept
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* A value that differs between processes (random per program, mixed with
 * the pid so that a fork gets its own), never 0 or root_ready. */
inline std::uint64_t process_token() noexcept
{
    static const std::uint64_t seed = [] {
        std::uint64_t s = static_cast<std::uint64_t>(
            std::chrono::steady_clock::now().time_since_epoch().count());
        try {
            std::random_device rd;
            s ^= (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
        } catch (...) {
            /* no entropy source: the clock and the address below remain */
        }
        s ^= static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&s));
        return s;
    }();
    std::uint64_t t = mix64(seed ^ static_cast<std::uint64_t>(::getpid())) & ~std::uint64_t(1);
    return t != 0 ? t : 2;
}

inline bool space_is_readonly(allocator_space_t *s) noexcept
{
    persistent_info info;
    return persistent_space_info(s, &info) == 0 &&
           (info.open_flags & PERSISTENT_OPEN_READONLY) != 0;
}

} // namespace detail

/* ------------------------------------------------------------------------ */
/* The typed calls, shared by PersistentSpace and Space                       */

/* Derived provides allocator_space_t *unwrap() const. */
template <class Derived> class SpaceOps {
    allocator_space_t *space() const noexcept
    {
        return static_cast<const Derived *>(this)->unwrap();
    }

public:
    /* [seed] The root with this tag, or nullptr.  No construction and no
     * waiting: a root being built by find_or_construct_root in another
     * thread is returned as it is (see find_constructed_root). */
    template <class T> T *find_root(std::uint64_t tag) const noexcept
    {
        allocator_space_t *s = space();
        return s ? static_cast<T *>(persistent_find_root(s, tag)) : nullptr;
    }

    /* [seed] One T built from args (parentheses, like std::make_unique).
     * nullptr with errno when the space is full. */
    template <class T, class... Args,
              std::enable_if_t<!std::is_array<T>::value &&
                                   std::is_constructible<T, Args...>::value,
                               int> = 0>
    T *alloc(Args &&...args) const noexcept(std::is_nothrow_constructible<T, Args...>::value)
    {
        void *p = raw_alloc(sizeof(T), alignof(T));
        if (p == nullptr)
            return nullptr;
        return construct<T>(p, std::forward<Args>(args)...);
    }

    /* alloc<T[]>(count): an array of count value-initialised T (see
     * alloc_array). */
    template <class A, std::enable_if_t<std::is_array<A>::value && std::extent<A>::value == 0,
                                        int> = 0>
    std::remove_extent_t<A> *alloc(std::size_t count) const
    {
        return alloc_array<std::remove_extent_t<A>>(count);
    }

    /* [seed] alloc<T>(count): an array of count value-initialised T, as the
     * seed resolved it.  The seed's two overloads overlap for a single
     * integer argument; this keeps the seed's resolution exactly and
     * resolves what the seed could not compile:
     *   - an argument of type std::size_t means an array
     *     (alloc<char>(strlen(s) + 1) is a buffer);
     *   - another integer type means one T built from it when T can be
     *     (alloc<int>(8) is one int holding 8), else an array
     *     (alloc<Node>(3) is three Nodes).
     * New code should say alloc_array<T>(count) or alloc<T[]>(count). */
    template <class T, std::enable_if_t<!std::is_array<T>::value, int> = 0>
    T *alloc(std::size_t count) const
    {
        return alloc_array<T>(count);
    }

    /* count value-initialised T in one block (zero for trivial types);
     * release with free_array(p, count).  nullptr with errno EINVAL for
     * count 0, ENOMEM when it does not fit. */
    template <class T> T *alloc_array(std::size_t count) const
    {
        static_assert(!std::is_void<T>::value, "alloc_array of void");
        if (count == 0) {
            errno = EINVAL;
            return nullptr;
        }
        if (count > static_cast<std::size_t>(-1) / sizeof(T)) {
            errno = ENOMEM;
            return nullptr;
        }
        void *p = raw_alloc(count * sizeof(T), alignof(T));
        if (p == nullptr)
            return nullptr;
        T *first = static_cast<T *>(p);
        std::size_t i = 0;
        try {
            for (; i < count; i++)
                ::new (static_cast<void *>(first + i)) T();
        } catch (...) {
            while (i-- > 0)
                first[i].~T();
            persistent_free(space(), p);
            throw;
        }
        return first;
    }

    /* [seed] A new root with this tag holding a T built from args.  nullptr
     * with errno EEXIST if the tag is taken.  The root is visible (zeroed)
     * before the constructor runs: for roots that other threads may look up
     * meanwhile, use find_or_construct_root. */
    template <class T, class... Args>
    T *alloc_root(std::uint64_t tag, Args &&...args) const
        noexcept(std::is_nothrow_constructible<T, Args...>::value)
    {
        static_assert(alignof(T) <= 16, "roots are 16-byte aligned");
        allocator_space_t *s = space();
        if (s == nullptr) {
            errno = EINVAL;
            return nullptr;
        }
        void *p = persistent_malloc_root(s, tag, sizeof(T));
        if (p == nullptr)
            return nullptr;
        if constexpr (std::is_nothrow_constructible<T, Args...>::value) {
            return ::new (p) T(std::forward<Args>(args)...);
        } else {
            try {
                return ::new (p) T(std::forward<Args>(args)...);
            } catch (...) {
                (void)persistent_root_remove(s, tag);
                throw;
            }
        }
    }

    /* The root with this tag, built from args the first time it is asked
     * for.  Racing threads all get the same T, constructed exactly once:
     *
     *   - the root block comes from persistent_root_get, zeroed, with a
     *     state word after the T; the thread that runs the constructor
     *     claims that word with a CAS.  Normally it is the thread whose
     *     persistent_root_get created the root; another caller that finds
     *     the root zeroed and unclaimed may claim it first, and then that
     *     caller constructs;
     *   - meanwhile other callers of find_or_construct_root wait (yielding)
     *     until the constructor has returned and the state says ready; they
     *     never see a half-built T.  This is the one wait in the C++ layer;
     *     it lasts as long as T's constructor (which must not ask for its
     *     own root).  find_root<T> does not wait: it may return the T while
     *     it is still being built (or zeroed); find_constructed_root<T>
     *     returns nullptr until it is ready;
     *   - the constructed T is written back (persistent_persist) before
     *     the state says ready, so with PMEM durability the state never
     *     says ready over unpersisted contents;
     *   - if the process dies during construction, the state names a dead
     *     process: the next caller (in a later process) zeroes the T and
     *     constructs it again; whatever the interrupted constructor had
     *     allocated leaks.  Two writer processes never share a space (G6),
     *     which is what makes "another process" mean "a dead one";
     *   - if the constructor throws, the T is zeroed, the claim released
     *     and the exception propagates; a waiting thread may then construct.
     *
     * nullptr with errno: ENOMEM (no room), EEXIST (the tag names a root too
     * small to be a T made here, e.g. one made by alloc_root), EROFS (the
     * space is open read-only and has no such root), EAGAIN (read-only, and
     * the root is not constructed yet).  Do not mix alloc_root and
     * find_or_construct_root on one tag. */
    template <class T, class... Args>
    T *find_or_construct_root(std::uint64_t tag, Args &&...args) const
    {
        static_assert(alignof(T) <= 16, "roots are 16-byte aligned");
        constexpr std::size_t off = detail::root_state_offset<T>();
        constexpr std::size_t size = detail::root_block_size<T>();
        allocator_space_t *s = space();
        if (s == nullptr) {
            errno = EINVAL;
            return nullptr;
        }
        bool created = false;
        void *blk = persistent_root_get(s, tag, size, &created);
        const bool readonly = blk == nullptr && errno == EROFS;
        if (readonly) {
            /* persistent_root_get refuses a read-only space even when the
             * root exists; an existing, constructed root is still found */
            blk = persistent_find_root(s, tag);
            errno = EROFS;
        }
        if (blk == nullptr)
            return nullptr;
        if (!created && persistent_usable_size(s, blk) < size) {
            errno = EEXIST;
            return nullptr;
        }
        std::atomic<std::uint64_t> *state = detail::root_state(blk, off);
        /* acquire: pairs with the release below, so a ready T is complete */
        std::uint64_t w = state->load(std::memory_order_acquire);
        if (w == detail::root_ready)
            return static_cast<T *>(blk);
        if (readonly || detail::space_is_readonly(s)) {
            errno = EAGAIN;
            return nullptr;
        }
        const std::uint64_t me = detail::process_token();
        for (;;) {
            if (w == detail::root_ready)
                return static_cast<T *>(blk);
            if (w == me) { /* a thread of this process is constructing it */
                std::this_thread::yield();
                w = state->load(std::memory_order_acquire);
                continue;
            }
            /* 0: unclaimed; another token: its process died constructing.
             * acquire on failure: the state re-read may say ready */
            if (!state->compare_exchange_weak(w, me, std::memory_order_acquire,
                                              std::memory_order_acquire))
                continue;
            if (w != 0)
                std::memset(blk, 0, sizeof(T));
            try {
                ::new (blk) T(std::forward<Args>(args)...);
            } catch (...) {
                std::memset(blk, 0, sizeof(T));
                /* release: the zeroed T before the claim is dropped */
                state->store(0, std::memory_order_release);
                throw;
            }
            persistent_persist(blk, sizeof(T));
            /* release: publishes the constructed T to the acquire loads */
            state->store(detail::root_ready, std::memory_order_release);
            persistent_persist(state, sizeof *state);
            return static_cast<T *>(blk);
        }
    }

    /* The root with this tag if find_or_construct_root has finished
     * constructing it, else nullptr.  Never waits. */
    template <class T> T *find_constructed_root(std::uint64_t tag) const noexcept
    {
        constexpr std::size_t off = detail::root_state_offset<T>();
        allocator_space_t *s = space();
        void *blk = s ? persistent_find_root(s, tag) : nullptr;
        if (blk == nullptr || persistent_usable_size(s, blk) < detail::root_block_size<T>())
            return nullptr;
        /* acquire: see find_or_construct_root */
        if (detail::root_state(blk, off)->load(std::memory_order_acquire) != detail::root_ready)
            return nullptr;
        return static_cast<T *>(blk);
    }

    /* Runs ~T on the root with this tag and removes the root (freeing its
     * block).  For roots made by alloc_root or find_or_construct_root; no
     * other thread may be using it.  0, or -ENOENT. */
    template <class T> int destroy_root(std::uint64_t tag) const noexcept
    {
        allocator_space_t *s = space();
        T *p = s ? static_cast<T *>(persistent_find_root(s, tag)) : nullptr;
        if (p == nullptr)
            return -ENOENT;
        p->~T();
        return persistent_root_remove(s, tag);
    }

    /* [seed] Runs ~T and frees the block; nullptr is a no-op. */
    template <class T> void free(T *p) const noexcept
    {
        if (p == nullptr)
            return;
        p->~T();
        persistent_free(space(), const_cast<std::remove_cv_t<T> *>(p));
    }

    /* Runs ~T on count elements (last first) and frees the block. */
    template <class T> void free_array(T *p, std::size_t count) const noexcept
    {
        if (p == nullptr)
            return;
        while (count-- > 0)
            p[count].~T();
        persistent_free(space(), const_cast<std::remove_cv_t<T> *>(p));
    }

    /* [seed] A raw pointer stored in the space during an earlier mapping,
     * rewritten for the current one (persistent_ptr); nullptr when it
     * belongs to no recorded mapping. */
    template <class T> T *restore(T *original) const noexcept
    {
        allocator_space_t *s = space();
        if (s == nullptr)
            return nullptr;
        return static_cast<T *>(
            persistent_ptr(s, const_cast<void *>(static_cast<const volatile void *>(original))));
    }

private:
    void *raw_alloc(std::size_t size, std::size_t align) const noexcept
    {
        allocator_space_t *s = space();
        if (s == nullptr) {
            errno = EINVAL;
            return nullptr;
        }
        return align > 16 ? persistent_aligned_alloc(s, align, size)
                          : persistent_malloc(s, size);
    }

    template <class T, class... Args> T *construct(void *p, Args &&...args) const
        noexcept(std::is_nothrow_constructible<T, Args...>::value)
    {
        if constexpr (std::is_nothrow_constructible<T, Args...>::value) {
            return ::new (p) T(std::forward<Args>(args)...);
        } else {
            try {
                return ::new (p) T(std::forward<Args>(args)...);
            } catch (...) {
                persistent_free(space(), p);
                throw;
            }
        }
    }
};

/* ------------------------------------------------------------------------ */
/* Space: the owning handle                                                   */

/* Opens a space on construction and closes it on destruction.  Move-only.
 * Not meant to be stored inside a space (it holds the mapping's address);
 * store a PersistentSpace there.  Closing requires that no thread is inside
 * a call on the space (persistent_space_close). */
class Space : public SpaceOps<Space> {
public:
    /* Options for creating a space of size bytes (growable up to max_size
     * when that is larger), or opening it read-write if it exists. */
    static persistent_options create_options(std::uint64_t size, std::uint64_t max_size = 0,
                                             std::uint32_t durability = 0) noexcept
    {
        persistent_options o{};
        o.flags = PERSISTENT_OPEN_CREATE;
        o.size = size;
        o.max_size = max_size;
        o.durability = durability;
        return o;
    }
    /* Options for opening an existing space (flags: PERSISTENT_OPEN_*). */
    static persistent_options open_options(std::uint32_t flags = 0) noexcept
    {
        persistent_options o{};
        o.flags = flags;
        return o;
    }

    /* No space. */
    Space() noexcept = default;

    /* Takes ownership of a space opened with the C API. */
    explicit Space(allocator_space_t *adopt) noexcept : space_(adopt) {}

    /* Creates path with room for size bytes, or opens it read-write when it
     * is already a space (create_persistent_allocator's behaviour).  Throws
     * SpaceError. */
    Space(const std::string &path, std::uint64_t size) : Space(path, create_options(size)) {}

    /* persistent_space_open(path, &opts).  Throws SpaceError. */
    Space(const std::string &path, const persistent_options &opts)
    {
        int r = persistent_space_open(path.c_str(), &opts, &space_);
        if (r < 0) {
            space_ = nullptr;
            throw SpaceError(r, "persistent_mem: open " + path + ": " + persistent_errormsg());
        }
    }

    /* The same without exceptions: an empty Space and ec set on failure. */
    static Space open(const std::string &path, const persistent_options &opts,
                      std::error_code &ec) noexcept
    {
        allocator_space_t *s = nullptr;
        int r = persistent_space_open(path.c_str(), &opts, &s);
        if (r < 0) {
            ec = make_error_code(r);
            return Space();
        }
        ec.clear();
        return Space(s);
    }

    Space(const Space &) = delete;
    Space &operator=(const Space &) = delete;
    Space(Space &&other) noexcept : space_(other.release()) {}
    Space &operator=(Space &&other) noexcept
    {
        if (this != &other) {
            std::error_code ignored;
            close(ignored);
            space_ = other.release();
        }
        return *this;
    }

    /* Closes the space; a failure to close is ignored here (call close()
     * first to see it). */
    ~Space()
    {
        std::error_code ignored;
        close(ignored);
    }

    /* Closes now; the handle is empty afterwards even on failure.  Throws
     * SpaceError. */
    void close()
    {
        std::error_code ec;
        close(ec);
        if (ec)
            throw SpaceError(ec.value(), std::string("persistent_mem: close: ") +
                                             persistent_errormsg());
    }
    void close(std::error_code &ec) noexcept
    {
        ec.clear();
        if (space_ == nullptr)
            return;
        int r = persistent_space_close(space_);
        space_ = nullptr;
        if (r < 0)
            ec = make_error_code(r);
    }

    /* Gives up ownership without closing. */
    allocator_space_t *release() noexcept
    {
        allocator_space_t *s = space_;
        space_ = nullptr;
        return s;
    }

    allocator_space_t *get() const noexcept { return space_; }
    allocator_space_t *unwrap() const noexcept { return space_; }
    explicit operator bool() const noexcept { return space_ != nullptr; }

    /* persistent_space_info; throws SpaceError. */
    persistent_info info() const
    {
        persistent_info in;
        int r = persistent_space_info(space_, &in);
        if (r < 0)
            throw SpaceError(r, std::string("persistent_mem: info: ") + persistent_errormsg());
        return in;
    }

    /* persistent_sync; throws SpaceError. */
    void sync() const
    {
        int r = persistent_sync(space_);
        if (r < 0)
            throw SpaceError(r, std::string("persistent_mem: sync: ") + persistent_errormsg());
    }

private:
    allocator_space_t *space_ = nullptr;
};

/* ------------------------------------------------------------------------ */
/* PersistentSpace: a storable handle                                         */

/* [seed] A handle to an open space that may be stored inside a space: one
 * 64-bit word with PersistentPtr's encoding (an offset from the base of the
 * space holding the handle, or an address outside any space), so it stays
 * right when the space is mapped elsewhere or the block holding it is
 * copied within the space.  Zeroed memory holds a null handle.  It does not
 * own the space. */
class PersistentSpace : public SpaceOps<PersistentSpace> {
public:
    PersistentSpace() noexcept : word_(0) {}
    PersistentSpace(allocator_space_t *space) noexcept : word_(detail::encode(detail::at(this), space)) {}
    PersistentSpace(const Space &space) noexcept : word_(detail::encode(detail::at(this), space.get())) {}
    PersistentSpace(const PersistentSpace &other) noexcept
        : word_(detail::encode(detail::at(this), other.unwrap()))
    {
    }
    ~PersistentSpace() = default;

    PersistentSpace &operator=(const PersistentSpace &other) noexcept
    {
        word_ = detail::encode(detail::at(this), other.unwrap());
        return *this;
    }
    PersistentSpace &operator=(allocator_space_t *space) noexcept
    {
        word_ = detail::encode(detail::at(this), space);
        return *this;
    }
    explicit operator bool() const noexcept { return word_ != 0; }

    /* [seed] The space, at its current address; nullptr for a null handle. */
    allocator_space_t *unwrap() const noexcept
    {
        return static_cast<allocator_space_t *>(detail::decode(detail::at(this), word_));
    }

    friend bool operator==(const PersistentSpace &a, const PersistentSpace &b) noexcept
    {
        return a.unwrap() == b.unwrap();
    }
    friend bool operator!=(const PersistentSpace &a, const PersistentSpace &b) noexcept
    {
        return !(a == b);
    }

private:
    std::uint64_t word_;
};

static_assert(sizeof(PersistentSpace) == 8, "PersistentSpace is one word");

} // namespace persistent_mem

#endif

/* persistent_space.hpp: typed allocation and roots on a space.
 *
 *   PersistentSpace  a handle to an open space that may itself be stored in a
 *                    space (one word, the encoding of PersistentPtr), with the
 *                    seed's calls: unwrap, find_root<T>, alloc<T>(args...),
 *                    alloc_root<T>, free<T>, restore<T>, plus alloc_array<T>,
 *                    find_or_construct_root<T> and destroy_root<T>.
 *   Space            the owning handle: opens a space in its constructor (a
 *                    file by its path) or with Space::scratch (a scratch
 *                    space in memory, gone at close) and closes it in its
 *                    destructor; move-only; the same typed calls.
 *
 * Errors.  Space's open and close throw SpaceError (a std::system_error
 * whose code() is the library's negative code in
 * persistent_mem::error_category(), comparable with std::errc where one
 * applies), and each has a noexcept twin that fills a std::error_code
 * instead; info() and sync() throw SpaceError too.
 * The typed calls follow the C API: nullptr with errno set (ENOMEM when the
 * space is full, EINVAL without a space).  A constructor that throws frees
 * its block and the exception propagates.  free, free_array and
 * destroy_root ask first what the library lets them ask (is it a live
 * block, is the space writable, is a transaction open) and run ~T only
 * when the free can go ahead; what cannot be asked is listed at each.
 */
#ifndef PERSISTENT_MEM_PERSISTENT_SPACE_HPP
#define PERSISTENT_MEM_PERSISTENT_SPACE_HPP

#include "persistent_ptr.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

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

/* 0 when s is open so that the library frees there, -EROFS when it is
 * open read-only or with allocation disabled (PERSISTENT_OPEN_NO_RECOVER,
 * or a private open that skipped recovery), else persistent_space_info's
 * code (no space).  One persistent_space_info call. */
inline int free_refusal(allocator_space_t *s) noexcept
{
    persistent_info in;
    const int r = persistent_space_info(s, &in);
    if (r != 0)
        return r;
    if ((in.open_flags & (PERSISTENT_OPEN_READONLY | PERSISTENT_OPEN_NO_RECOVER)) != 0)
        return -EROFS;
    return 0;
}

/* A T built from args at p; if its constructor throws, undo() gives the
 * block back (each caller's way) before the exception goes on. */
template <class T, class Undo, class... Args>
T *construct_or_undo(void *p, Undo &&undo, Args &&...args)
    noexcept(std::is_nothrow_constructible<T, Args...>::value)
{
    if constexpr (std::is_nothrow_constructible<T, Args...>::value) {
        return ::new (p) T(std::forward<Args>(args)...);
    } else {
        try {
            return ::new (p) T(std::forward<Args>(args)...);
        } catch (...) {
            undo();
            throw;
        }
    }
}
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
/* The typed calls, shared by PersistentSpace and Space                       */

/* Derived provides allocator_space_t *unwrap() const, and to SpaceOps
 * int free_refusal() const noexcept: detail::free_refusal(unwrap()), asked
 * or known. */
template <class Derived> class SpaceOps {
    allocator_space_t *space() const noexcept
    {
        return static_cast<const Derived *>(this)->unwrap();
    }
    int free_refusal() const noexcept
    {
        return static_cast<const Derived *>(this)->free_refusal();
    }

public:
    /* [seed] The root with this tag, or nullptr.  A root made by
     * find_or_construct_root is found only once it is constructed. */
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
        return detail::construct_or_undo<T>(
            p, [s, tag] { (void)persistent_root_remove(s, tag); }, std::forward<Args>(args)...);
    }

    /* The root with this tag, built from args the first time it is asked
     * for.  Never waits for another thread: a caller that finds no root
     * allocates a T, constructs it, writes it back (persistent_persist) and
     * publishes it (persistent_root_publish).  Racing callers may each
     * construct one; exactly one is published and all of them get it, the
     * others' T are destroyed and freed before the call returns.  So a root
     * is never seen half-built, by this call, find_root<T> or C code, and
     * T's constructor may run more than once per root (it must not ask for
     * its own root).  If the process dies during construction the
     * unpublished T leaks, with whatever its constructor had allocated; the
     * next caller builds a new one.  If the constructor throws, its block
     * is freed and the exception propagates.
     *
     * nullptr with errno: ENOMEM (no room), EEXIST (the tag names a root too
     * small to be a T), EROFS (the space is open read-only and has no such
     * root), EINVAL (no space). */
    template <class T, class... Args>
    T *find_or_construct_root(std::uint64_t tag, Args &&...args) const
    {
        allocator_space_t *s = space();
        if (s == nullptr) {
            errno = EINVAL;
            return nullptr;
        }
        void *found = persistent_find_root(s, tag);
        if (found == nullptr) {
            void *p = raw_alloc(sizeof(T), alignof(T));
            if (p == nullptr)
                return nullptr;         /* ENOMEM, or EROFS when read-only */
            T *mine = construct<T>(p, std::forward<Args>(args)...);
            persistent_persist(mine, sizeof(T));
            found = persistent_root_publish(s, tag, mine);
            if (found == mine)
                return mine;
            const int err = errno;
            mine->~T();
            persistent_free(s, p);
            if (found == nullptr) {
                errno = err;
                return nullptr;
            }
        }
        if (persistent_usable_size(s, found) < sizeof(T)) {
            errno = EEXIST;
            return nullptr;
        }
        return static_cast<T *>(found);
    }

    /* Runs ~T on the root with this tag and removes the root (freeing its
     * block).  For roots made by alloc_root or find_or_construct_root; no
     * other thread may be using it.
     *
     * ~T cannot be undone, so what can be asked before it runs is asked:
     * 0, or with nothing done
     *   -ENOENT  no root with this tag (or no space);
     *   -EROFS   the space is open read-only, or with allocation disabled
     *            (PERSISTENT_OPEN_NO_RECOVER, or a private open that
     *            skipped recovery): nothing is freed there;
     *   -EBUSY   the calling thread has a transaction open on the space.
     *            persistent_root_remove refuses (-EBUSY) a root in which
     *            an open transaction has a snapshot, and no call tells
     *            whether this one has; remove the root after the commit.
     * persistent_root_remove's other refusals come after ~T has run: a
     * snapshot of another thread's open transaction in the block (-EBUSY;
     * changing such a block is a race the program must not have), a thread
     * that cannot write to the space (-EAGAIN, -EMFILE: see
     * persistent_free).  The root then stays, holding a destroyed T: its
     * bytes as ~T left them, the blocks ~T freed gone.  Do not use it as a
     * T or destroy it again; persistent_root_remove removes it. */
    template <class T> int destroy_root(std::uint64_t tag) const noexcept
    {
        allocator_space_t *s = space();
        T *p = s ? static_cast<T *>(persistent_find_root(s, tag)) : nullptr;
        if (p == nullptr)
            return -ENOENT;
        const int r = free_refusal();
        if (r != 0)
            return r;
        if (persistent_tx_depth(s) > 0)
            return -EBUSY;
        p->~T();
        return persistent_root_remove(s, tag);
    }

    /* [seed] Runs ~T and frees the block; nullptr is a no-op.  For a
     * polymorphic T, the block is that of the most-derived object, as with
     * delete: p may point to a base (a second base lies inside the block),
     * and ~T must then be virtual.
     *
     * ~T runs only when the library would free the block
     * (persistent_free_check, asked first).  Otherwise the block is not
     * destroyed: persistent_free reports it to the error hook and nothing
     * changes.  So it is with a p that is not a live block of this space
     * (freed already, from another space, inside a block), any p on a
     * space where nothing is freed (open read-only, or with allocation
     * disabled: PERSISTENT_OPEN_NO_RECOVER, a private open that skipped
     * recovery), a root's block (use destroy_root), a block an open
     * transaction allocated, frees or has a snapshot in (the caller's own
     * included: free it after that transaction ends; inside it, tx_delete
     * frees a trivially destructible T), and a thread that cannot write to
     * the space (-EAGAIN, -EMFILE: see persistent_free_check).  Only a
     * refusal that comes between the check and the free (another thread
     * freeing the same block, or making it a root's, at that moment: a
     * race in the program) leaves the block allocated holding a destroyed
     * T. */
    template <class T> void free(T *p) const noexcept
    {
        if (p == nullptr)
            return;
        allocator_space_t *s = space();
        const volatile void *whole;
        if constexpr (std::is_polymorphic<T>::value)
            whole = dynamic_cast<const volatile void *>(p);
        else
            whole = p;
        void *block = const_cast<void *>(whole);
        if (persistent_free_check(s, block) == 0)
            p->~T();
        persistent_free(s, block);
    }

    /* Runs ~T on count elements (last first) and frees the block: as
     * free, each refusal included. */
    template <class T> void free_array(T *p, std::size_t count) const noexcept
    {
        if (p == nullptr)
            return;
        allocator_space_t *s = space();
        void *block = const_cast<void *>(static_cast<const volatile void *>(p));
        if (persistent_free_check(s, block) == 0) {
            while (count-- > 0)
                p[count].~T();
        }
        persistent_free(s, block);
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
        return detail::construct_or_undo<T>(
            p, [this, p] { persistent_free(space(), p); }, std::forward<Args>(args)...);
    }
};

/* ------------------------------------------------------------------------ */
/* Space: the owning handle                                                   */

/* Opens a space on construction and closes it on destruction.  Move-only.
 * Not meant to be stored inside a space (it holds the mapping's address);
 * store a PersistentSpace there.  Closing requires that no thread is inside
 * a call on the space (persistent_space_close).
 *
 * A scratch space (PERSISTENT_OPEN_SCRATCH: a new space with no name, gone
 * at close; for caches and tests) in memory is Space::scratch(size), never
 * a path: the constructors take a std::string, and Space(nullptr, ...) is
 * deleted rather than read as "no path".  One in an unnamed file in a
 * directory is Space(dir, Space::scratch_options(size)).
 *
 * The open's mode (may blocks be freed here) is learnt once, when the
 * space is opened or adopted, so destroy_root asks nothing to refuse a
 * read-only space (free and free_array ask persistent_free_check, which
 * knows it too). */
class Space : public SpaceOps<Space> {
    template <class> friend class SpaceOps;

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
    /* Options for a scratch space of size bytes (growable up to max_size
     * when that is larger); flags may add PERSISTENT_OPEN_LAZY, the one
     * other flag a scratch space takes. */
    static persistent_options scratch_options(std::uint64_t size, std::uint64_t max_size = 0,
                                              std::uint32_t flags = 0) noexcept
    {
        persistent_options o{};
        o.flags = PERSISTENT_OPEN_SCRATCH | flags;
        o.size = size;
        o.max_size = max_size;
        return o;
    }

    /* A scratch space in memory (a memfd; nothing in any directory) with
     * room for size bytes, growable up to max_size when that is larger: a
     * writer's space like any other (allocation, roots, transactions),
     * gone when it is closed.  Throws SpaceError. */
    static Space scratch(std::uint64_t size, std::uint64_t max_size = 0)
    {
        return scratch(scratch_options(size, max_size));
    }
    /* persistent_space_open(NULL, &opts) with PERSISTENT_OPEN_SCRATCH added
     * to opts.flags.  Throws SpaceError. */
    static Space scratch(const persistent_options &opts)
    {
        std::error_code ec;
        Space s = scratch(opts, ec);
        if (ec)
            throw SpaceError(ec.value(), std::string("persistent_mem: open scratch space: ") +
                                             persistent_errormsg());
        return s;
    }
    /* The same without exceptions: an empty Space and ec set on failure. */
    static Space scratch(const persistent_options &opts, std::error_code &ec) noexcept
    {
        persistent_options o = opts;
        o.flags |= PERSISTENT_OPEN_SCRATCH;
        return open_at(nullptr, o, ec);
    }

    /* No space. */
    Space() noexcept = default;

    /* Takes ownership of a space opened with the C API (and asks it its
     * mode: one persistent_space_info). */
    explicit Space(allocator_space_t *adopt) noexcept
        : space_(adopt), free_refusal_(detail::free_refusal(adopt))
    {
    }

    /* Creates path with room for size bytes, or opens it read-write when it
     * is already a space (create_persistent_allocator's behaviour).  Throws
     * SpaceError. */
    Space(const std::string &path, std::uint64_t size) : Space(path, create_options(size)) {}

    /* persistent_space_open(path, &opts).  Throws SpaceError.  With
     * PERSISTENT_OPEN_SCRATCH in opts, path is the directory of the
     * scratch space's unnamed file. */
    Space(const std::string &path, const persistent_options &opts)
    {
        std::error_code ec;
        *this = open(path, opts, ec);
        if (ec)
            throw SpaceError(ec.value(),
                             "persistent_mem: open " + path + ": " + persistent_errormsg());
    }

    /* A null path is no path: a scratch space in memory is Space::scratch. */
    Space(std::nullptr_t, std::uint64_t) = delete;
    Space(std::nullptr_t, const persistent_options &) = delete;

    /* The same without exceptions: an empty Space and ec set on failure. */
    static Space open(const std::string &path, const persistent_options &opts,
                      std::error_code &ec) noexcept
    {
        return open_at(path.c_str(), opts, ec);
    }
    static Space open(std::nullptr_t, const persistent_options &, std::error_code &) = delete;

    Space(const Space &) = delete;
    Space &operator=(const Space &) = delete;
    Space(Space &&other) noexcept
        : space_(other.space_), free_refusal_(other.free_refusal_)
    {
        other.release();
    }
    Space &operator=(Space &&other) noexcept
    {
        if (this != &other) {
            std::error_code ignored;
            close(ignored);
            space_ = other.space_;
            free_refusal_ = other.free_refusal_;
            other.release();
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
        free_refusal_ = -EINVAL;
        if (r < 0)
            ec = make_error_code(r);
    }

    /* Gives up ownership without closing. */
    allocator_space_t *release() noexcept
    {
        allocator_space_t *s = space_;
        space_ = nullptr;
        free_refusal_ = -EINVAL;
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
    /* persistent_space_open(path, &opts); path NULL only for a scratch
     * space in memory */
    static Space open_at(const char *path, const persistent_options &opts,
                         std::error_code &ec) noexcept
    {
        allocator_space_t *s = nullptr;
        int r = persistent_space_open(path, &opts, &s);
        if (r < 0) {
            ec = make_error_code(r);
            return Space();
        }
        ec.clear();
        return Space(s);
    }

    /* for SpaceOps: known since the open */
    int free_refusal() const noexcept { return free_refusal_; }

    allocator_space_t *space_ = nullptr;
    int free_refusal_ = -EINVAL; /* detail::free_refusal(space_) */
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
    /* unwrap() != nullptr (bytes copied out of every space name none) */
    explicit operator bool() const noexcept { return unwrap() != nullptr; }

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
    template <class> friend class SpaceOps;

    /* for SpaceOps (destroy_root): asked each time (no room to keep it) */
    int free_refusal() const noexcept { return detail::free_refusal(unwrap()); }

    std::uint64_t word_;
};

static_assert(sizeof(PersistentSpace) == 8, "PersistentSpace is one word");

} // namespace persistent_mem

#endif

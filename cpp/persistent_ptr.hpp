/* persistent_ptr.hpp: PersistentPtr<T>, a pointer that may be stored inside
 * a space and stays valid when the space is mapped at another address or
 * the block holding it is copied within the space, and AtomicPersistentPtr<T>,
 * its lock-free atomic twin.  Header-only, C++17.
 *
 * Encoding: one 64-bit word, sizeof == 8.
 *
 *   0                      null, wherever the pointer lives (so zeroed
 *                          memory holds valid null pointers)
 *   bit 63 set             the pointer object itself lies inside an open
 *                          space; bits 0..62 are the target's offset from
 *                          the base of that space (two's complement, so
 *                          arithmetic past either end is exact)
 *   bit 63 clear, not 0    the pointer object lies outside every space
 *                          (stack, heap, static); the word is the target's
 *                          address
 *
 * Why an offset from the base of the space that holds the pointer:
 *   - Remapping moves the base and the target together, so base + offset
 *     finds the target at any address.  The base is found from the pointer's
 *     own address with persistent_space_of(this), which needs no setup and
 *     no state stored with the pointer.
 *   - Copying bytes within the space (memcpy, persistent_realloc, a
 *     container relocating a block) moves the pointer but not its target;
 *     the offset from the base does not depend on where the pointer lies,
 *     so the copy is still right.  A self-relative offset (target minus
 *     this, the seed's encoding) breaks under exactly this copy.
 *   - One word keeps the pointer at 8 bytes and makes the atomic variant a
 *     plain 64-bit atomic, lock-free everywhere.
 *   - A pointer outside any space holds an address: temporaries, iterators
 *     and containers on the stack cost no lookup to dereference.
 *
 * The word depends on where the object lies, so construction and
 * assignment always re-encode for the destination.  Copying the bytes of
 * pointers within one space is always right; bytes copied into a space from
 * outside keep an address (right until the space moves); bytes copied out
 * of a space read as nullptr, and test false (a tagged word means nothing
 * outside every space).  Limits of the encoding:
 *   - a pointer stored in one space that points into another space, or
 *     outside any space, is kept relative to the base of the space holding
 *     it: it is exact while both stay mapped where they are, and
 *     meaningless after the other one moves;
 *   - an object that points into itself (libstdc++'s std::basic_string in
 *     its short form points at its own buffer) is not made relocatable by
 *     bytes: copy it with its copy or move constructor;
 *   - user-space addresses must have bit 63 clear (true of Linux on x86-64
 *     and AArch64 without top-byte pointer tagging).
 *
 * Cost: get() of a pointer inside a space calls persistent_space_of (a
 * thread-local cache hit); storing into a pointer checks where the
 * destination lies (a bounds check for the caller's stack, else
 * persistent_space_of).  ++, --, += and -= adjust the word in place and
 * need no lookup.
 */
#ifndef PERSISTENT_MEM_PERSISTENT_PTR_HPP
#define PERSISTENT_MEM_PERSISTENT_PTR_HPP

#ifndef __cplusplus
#error "persistent_ptr.hpp is C++ (C++17 or later)"
#endif

#include "persistent_mem.h"

/* <iterator> and <memory> come before <functional>.  libstdc++ 12's
 * <functional> reads <bits/allocator.h>, whose shrink-to-fit helper calls
 * __make_move_if_noexcept_iterator, before <bits/stl_iterator.h> declares
 * it; the call is then found only by argument-dependent lookup, which
 * fails with _GLIBCXX_DEBUG for a container with PersistentAllocator (its
 * debug iterator has no associated namespace std), so vector's and
 * deque's shrink_to_fit() did not compile when this header came first. */
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <functional>
#include <type_traits>
#include <utility>

#if defined(__GLIBC__) && (defined(__GNUC__) || defined(__clang__))
#include <pthread.h>
#define PERSISTENT_MEM_STACK_BOUNDS 1
#else
#define PERSISTENT_MEM_STACK_BOUNDS 0
#endif

namespace persistent_mem {

template <class T> class PersistentPtr;
template <class T> class AtomicPersistentPtr;

namespace detail {

static_assert(sizeof(void *) <= sizeof(std::uint64_t),
              "pointers must fit in the 64-bit encoded word");

/* Bit 63 of an encoded word: the rest is an offset from the base of the
 * space that holds the word. */
constexpr std::uint64_t offset_tag = std::uint64_t(1) << 63;

#if PERSISTENT_MEM_STACK_BOUNDS
struct StackBounds {
    std::uintptr_t lo = 0, hi = 0;
};

inline StackBounds query_stack_bounds() noexcept
{
    StackBounds b;
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return b;
    void *addr = nullptr;
    std::size_t size = 0;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0 && addr != nullptr) {
        b.lo = reinterpret_cast<std::uintptr_t>(addr);
        b.hi = b.lo + size;
    }
    pthread_attr_destroy(&attr);
    return b;
}

/* An address at or below every live object of the caller's frames: the
 * frame of a function the caller has to call. */
__attribute__((noinline)) inline std::uintptr_t stack_floor() noexcept
{
    return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
}

/* True when p lies between the current frame and the top of this thread's
 * stack.  That range is stack in use, so no space can be mapped there; it
 * answers "not in a space" for temporaries and iterators without scanning
 * the registry of open spaces.  Anything else (another thread's stack, a
 * sanitizer's fake stack) gets false and takes the full lookup.  (The
 * main thread's bounds come from glibc and may include unmapped room below
 * the stack for growth; only code running on an alternate stack placed
 * there, with a space mapped between it and the stack, could be misled.) */
inline bool on_own_stack(const void *p) noexcept
{
    static thread_local const StackBounds b = query_stack_bounds();
    const std::uintptr_t floor = stack_floor();
    const std::uintptr_t a = reinterpret_cast<std::uintptr_t>(p);
    return floor - b.lo < b.hi - b.lo && a - floor < b.hi - floor;
}
#else
inline bool on_own_stack(const void *) noexcept
{
    return false;
}
#endif

/* Where an object lies, as a number.  Pointer objects pass their own
 * address to the functions below as an integer: they use it as an address,
 * never read through it, and GCC warns (-Wmaybe-uninitialized) when the
 * address of an object under construction goes to a const void *
 * parameter. */
template <class X> inline std::uintptr_t at(const X *self) noexcept
{
    return reinterpret_cast<std::uintptr_t>(self);
}

/* The open space whose mapping contains address self, or nullptr. */
inline allocator_space_t *home_of(std::uintptr_t self) noexcept
{
    const void *p = reinterpret_cast<const void *>(self);
    if (on_own_stack(p))
        return nullptr;
    return persistent_space_of(p);
}

/* The word that an object at self stores to designate target. */
inline std::uint64_t encode(std::uintptr_t self, const void *target) noexcept
{
    if (target == nullptr)
        return 0;
    const std::uintptr_t t = reinterpret_cast<std::uintptr_t>(target);
    allocator_space_t *home = home_of(self);
    if (home == nullptr)
        return static_cast<std::uint64_t>(t);
    const std::uintptr_t base = reinterpret_cast<std::uintptr_t>(home);
    return offset_tag | (static_cast<std::uint64_t>(t - base) & ~offset_tag);
}

/* The target designated by word w stored in an object at self. */
inline void *decode(std::uintptr_t self, std::uint64_t w) noexcept
{
    if ((w & offset_tag) == 0)
        return reinterpret_cast<void *>(static_cast<std::uintptr_t>(w));
    /* a tagged word is only ever written inside a space: skip the stack
     * check and go to the registry's cache directly */
    allocator_space_t *home = persistent_space_of(reinterpret_cast<const void *>(self));
    if (home == nullptr)
        return nullptr;
    std::uint64_t off = w & ~offset_tag;
    off |= (off & (offset_tag >> 1)) << 1; /* sign-extend from bit 62 */
    return reinterpret_cast<void *>(reinterpret_cast<std::uintptr_t>(home) +
                                    static_cast<std::uintptr_t>(off));
}

/* w moved by d bytes (modulo 2^64), for the object that holds w: its place
 * does not change, so neither does the kind of word it holds. */
inline std::uint64_t advance(std::uint64_t w, std::uint64_t d) noexcept
{
    if (w == 0)
        return 0; /* nullptr + 0; anything else is undefined anyway */
    if (w & offset_tag)
        return offset_tag | ((w + d) & ~offset_tag);
    return w + d;
}

template <class From, class To, class = void>
struct is_static_castable : std::false_type {};
template <class From, class To>
struct is_static_castable<From, To,
                          std::void_t<decltype(static_cast<To>(std::declval<From>()))>>
    : std::true_type {};

template <class T> struct not_void { using type = T; };
template <> struct not_void<void> { struct type {}; };
template <> struct not_void<const void> { struct type {}; };
template <> struct not_void<volatile void> { struct type {}; };
template <> struct not_void<const volatile void> { struct type {}; };

template <class T> constexpr std::ptrdiff_t element_size() noexcept
{
    static_assert(!std::is_void<T>::value,
                  "no arithmetic on PersistentPtr<void>");
    return static_cast<std::ptrdiff_t>(sizeof(T));
}

template <class I>
using if_integer = std::enable_if_t<std::is_integral<I>::value && !std::is_same<I, bool>::value, int>;

/* n elements of T as a byte delta, modulo 2^64 like the address arithmetic
 * it feeds (no signed overflow for any n). */
template <class T, class I> constexpr std::uint64_t scaled(I n) noexcept
{
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(n)) *
           static_cast<std::uint64_t>(element_size<T>());
}

template <class T> struct is_char_like : std::false_type {};
template <> struct is_char_like<char> : std::true_type {};
template <> struct is_char_like<signed char> : std::true_type {};
template <> struct is_char_like<unsigned char> : std::true_type {};
template <> struct is_char_like<wchar_t> : std::true_type {};
template <> struct is_char_like<char16_t> : std::true_type {};
template <> struct is_char_like<char32_t> : std::true_type {};
#if defined(__cpp_char8_t)
template <> struct is_char_like<char8_t> : std::true_type {};
#endif

} // namespace detail

/* A pointer to T that may live inside a space (see the top of this file).
 *
 * It is a fancy pointer in the sense of std::pointer_traits and
 * std::allocator_traits: nullable, contextually convertible to bool, a
 * random-access iterator, with pointer_to(), rebind<U>, and implicit
 * conversion to PersistentPtr<const T> and PersistentPtr<void> (and
 * static_cast back).  It converts implicitly from T* but not to T* (except
 * for character types, see below): use get() or to_address().
 *
 * Like a raw pointer it is not synchronised: concurrent reads are fine, a
 * write concurrent with any other access is a data race.  Share a changing
 * pointer between threads through AtomicPersistentPtr.
 *
 * A default-constructed or zeroed PersistentPtr is null.  Assigning to a
 * PersistentPtr never reads its previous value, so one may be assigned to in
 * memory that was never constructed (a fresh persistent_malloc block).
 * PersistentPtr<T> for T = void supports everything except dereference and
 * arithmetic. */
template <class T> class PersistentPtr {
    template <class U> friend class PersistentPtr;
    friend class AtomicPersistentPtr<T>;

    struct raw_word_tag {};
    PersistentPtr(raw_word_tag, std::uint64_t w) noexcept : word_(w) {}

public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;
    using difference_type = std::ptrdiff_t;
    using pointer = PersistentPtr;
    /* T & (for void, a placeholder: Boost's pointer_traits declares
     * pointer_to(reference)) */
    using reference = typename detail::not_void<T>::type &;
    using iterator_category = std::random_access_iterator_tag;
    template <class U> using rebind = PersistentPtr<U>;
    /* The atomic variant (see AtomicPersistentPtr). */
    using atomic = AtomicPersistentPtr<T>;

    /* null */
    PersistentPtr() noexcept : word_(0) {}

    /* Points at raw (any address; nullptr or 0 for null: there is no
     * separate nullptr_t overload, which would make the literal 0
     * ambiguous, and Boost.Container writes pointer(0)). */
    PersistentPtr(T *raw) noexcept : word_(detail::encode(detail::at(this), raw)) {}

    /* [seed] Points at raw, which lies in space.  The pointer finds its space
     * from its own address, so space is accepted for compatibility only. */
    PersistentPtr(T *raw, allocator_space_t *space) noexcept
        : word_(detail::encode(detail::at(this), raw))
    {
        (void)space;
    }

    /* [seed] A null pointer "of" space.  The encoding does not keep a space
     * in a null pointer: get_space() of a null pointer names the space the
     * pointer object itself lies in, if any. */
    template <class S,
              std::enable_if_t<std::is_same<S, allocator_space_t>::value &&
                                   !std::is_void<T>::value &&
                                   !std::is_same<std::remove_cv_t<T>,
                                                 allocator_space_t>::value,
                               int> = 0>
    explicit PersistentPtr(S *space) noexcept : word_(0)
    {
        (void)space;
    }

    /* Copies re-encode for the destination: see the top of this file. */
    PersistentPtr(const PersistentPtr &other) noexcept
        : word_(detail::encode(detail::at(this), other.get()))
    {
    }

    /* Implicit from PersistentPtr<U> when U* converts to T* (T = const U,
     * T = void, T a base of U). */
    template <class U,
              std::enable_if_t<std::is_convertible<U *, T *>::value, int> = 0>
    PersistentPtr(const PersistentPtr<U> &other) noexcept
        : word_(detail::encode(detail::at(this), static_cast<T *>(other.get())))
    {
    }

    /* Explicit from PersistentPtr<U> when static_cast<T *>(U *) is valid and
     * the conversion is not implicit: from void, from a base to a derived
     * class.  This is what static_cast<PersistentPtr<T>>(void_ptr) uses. */
    template <class U,
              std::enable_if_t<!std::is_convertible<U *, T *>::value &&
                                   detail::is_static_castable<U *, T *>::value,
                               int> = 0>
    explicit PersistentPtr(const PersistentPtr<U> &other) noexcept
        : word_(detail::encode(detail::at(this), static_cast<T *>(other.get())))
    {
    }

    ~PersistentPtr() = default;

    PersistentPtr &operator=(const PersistentPtr &other) noexcept
    {
        word_ = detail::encode(detail::at(this), other.get());
        return *this;
    }

    template <class U,
              std::enable_if_t<std::is_convertible<U *, T *>::value, int> = 0>
    PersistentPtr &operator=(const PersistentPtr<U> &other) noexcept
    {
        word_ = detail::encode(detail::at(this), static_cast<T *>(other.get()));
        return *this;
    }

    PersistentPtr &operator=(T *raw) noexcept
    {
        word_ = detail::encode(detail::at(this), raw);
        return *this;
    }

    /* The address pointed to, in the current mapping. */
    T *get() const noexcept { return static_cast<T *>(detail::decode(detail::at(this), word_)); }

    /* The space the target lies in; for a null pointer, the space this
     * pointer object lies in; nullptr when there is none. */
    allocator_space_t *get_space() const noexcept
    {
        if (word_ == 0)
            return detail::home_of(detail::at(this));
        return persistent_space_of(get());
    }

    /* [seed] Offset of the target from the base of get_space(); 0 for null
     * or for a target outside every space. */
    persistent_offset_t get_data_offset() const noexcept
    {
        T *p = get();
        allocator_space_t *s = p ? persistent_space_of(p) : nullptr;
        return s ? ptr_to_persistent_offset(s, p) : 0;
    }

    /* [seed] Diagnostics: the space's base minus this object's address (0
     * when get_space() is nullptr), as the seed reported it.  Not part of
     * this encoding; nothing depends on it. */
    std::int64_t get_space_offset() const noexcept
    {
        allocator_space_t *s = get_space();
        if (s == nullptr)
            return 0;
        return static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(s) -
                                         reinterpret_cast<std::uintptr_t>(this));
    }

    /* Diagnostics: whether the word holds an offset from the base of the
     * space this object lies in (true) or an address / null (false). */
    bool is_offset_encoded() const noexcept { return (word_ & detail::offset_tag) != 0; }

    std::add_lvalue_reference_t<T> operator*() const noexcept { return *get(); }
    T *operator->() const noexcept { return get(); }

    PersistentPtr &operator++() noexcept
    {
        word_ = detail::advance(word_, detail::scaled<T>(1));
        return *this;
    }
    PersistentPtr operator++(int) noexcept
    {
        PersistentPtr old(*this);
        ++*this;
        return old;
    }
    PersistentPtr &operator--() noexcept
    {
        word_ = detail::advance(word_, detail::scaled<T>(-1));
        return *this;
    }
    PersistentPtr operator--(int) noexcept
    {
        PersistentPtr old(*this);
        --*this;
        return old;
    }

    /* Arithmetic takes any integer type exactly, so that for character
     * types (which also convert to a raw pointer, see below) p + n never
     * competes with the built-in pointer arithmetic. */
    template <class I, detail::if_integer<I> = 0> PersistentPtr &operator+=(I n) noexcept
    {
        word_ = detail::advance(word_, detail::scaled<T>(n));
        return *this;
    }
    template <class I, detail::if_integer<I> = 0> PersistentPtr &operator-=(I n) noexcept
    {
        word_ = detail::advance(word_, std::uint64_t(0) - detail::scaled<T>(n));
        return *this;
    }
    template <class I, detail::if_integer<I> = 0> PersistentPtr operator+(I n) const noexcept
    {
        return PersistentPtr(offset_by(detail::scaled<T>(n)));
    }
    template <class I, detail::if_integer<I> = 0> PersistentPtr operator-(I n) const noexcept
    {
        return PersistentPtr(offset_by(std::uint64_t(0) - detail::scaled<T>(n)));
    }
    template <class I, detail::if_integer<I> = 0>
    friend PersistentPtr operator+(I n, const PersistentPtr &p) noexcept
    {
        return p + n;
    }
    template <class I, detail::if_integer<I> = 0> reference operator[](I i) const noexcept
    {
        return get()[static_cast<difference_type>(i)];
    }

    /* get() != nullptr.  Not word_ != 0: a word tagged as an offset whose
     * bytes were copied out of every space designates nothing (get() is
     * null), and a test must agree with the dereference it guards. */
    explicit operator bool() const noexcept { return get() != nullptr; }

    /* Only for character types: an implicit conversion to the raw pointer.
     * libstdc++'s std::basic_string needs it (c_str() and data() return
     * the stored pointer as a _CharT *).  Pointers to other types never
     * convert implicitly, so that containers which would link their nodes
     * with raw pointers (std::list, std::map) fail to compile instead of
     * failing after a remap. */
    template <class U,
              std::enable_if_t<detail::is_char_like<std::remove_cv_t<T>>::value &&
                                   std::is_same<std::remove_cv_t<U>, std::remove_cv_t<T>>::value &&
                                   std::is_convertible<T *, U *>::value,
                               int> = 0>
    operator U *() const noexcept
    {
        return get();
    }

    /* Exchanges the targets (each side re-encoded for its own place). */
    void swap(PersistentPtr &other) noexcept
    {
        T *mine = get();
        *this = other.get();
        other = mine;
    }

    /* std::pointer_traits<PersistentPtr<T>>::pointer_to (not for void). */
    static PersistentPtr pointer_to(reference r) noexcept
    {
        return PersistentPtr(std::addressof(r));
    }

    /* The address pointed to (std::to_address and ADL). */
    friend T *to_address(const PersistentPtr &p) noexcept { return p.get(); }

private:
    T *offset_by(std::uint64_t bytes) const noexcept
    {
        T *p = get();
        if (p == nullptr)
            return nullptr;
        /* address arithmetic, as advance() does on the word */
        return reinterpret_cast<T *>(reinterpret_cast<std::uintptr_t>(p) +
                                     static_cast<std::uintptr_t>(bytes));
    }

    std::uint64_t word_;
};

static_assert(sizeof(PersistentPtr<int>) == 8, "PersistentPtr is one word");

/* Signed distance in elements (b - a > 0 when b lies after a). */
template <class T, class U,
          std::enable_if_t<std::is_same<std::remove_cv_t<T>, std::remove_cv_t<U>>::value,
                           int> = 0>
inline std::ptrdiff_t operator-(const PersistentPtr<T> &a, const PersistentPtr<U> &b) noexcept
{
    const std::uintptr_t x = reinterpret_cast<std::uintptr_t>(a.get());
    const std::uintptr_t y = reinterpret_cast<std::uintptr_t>(b.get());
    return static_cast<std::ptrdiff_t>(x - y) / detail::element_size<T>();
}

namespace detail {
/* Pointers to T and to U may be compared (as raw pointers could be). */
template <class T, class U>
using if_comparable = std::enable_if_t<std::is_convertible<T *, U *>::value ||
                                           std::is_convertible<U *, T *>::value,
                                       int>;

/* The address of p as a C * (C the composite pointer type of p and the
 * other operand), as a number: converting first is what moves a pointer to
 * a derived class onto its base subobject, which need not be at the same
 * address (multiple inheritance); comparing numbers gives a total order. */
template <class C, class T> inline std::uintptr_t addr_as(T *p) noexcept
{
    return reinterpret_cast<std::uintptr_t>(static_cast<C>(p));
}
template <class T, class U> using common_ptr = std::common_type_t<T *, U *>;
} // namespace detail

/* Comparisons are of addresses in the current mapping, between two
 * PersistentPtrs, a PersistentPtr and a raw pointer, or nullptr; the
 * pointee types must be comparable as for raw pointers, and both sides are
 * converted to their common pointer type first, as for raw pointers. */
#define PERSISTENT_MEM_PTR_CMP(op)                                                   \
    template <class T, class U, detail::if_comparable<T, U> = 0>                     \
    inline bool operator op(const PersistentPtr<T> &a, const PersistentPtr<U> &b) noexcept \
    {                                                                                \
        using C = detail::common_ptr<T, U>;                                          \
        return detail::addr_as<C>(a.get()) op detail::addr_as<C>(b.get());           \
    }                                                                                \
    template <class T, class U, detail::if_comparable<T, U> = 0>                     \
    inline bool operator op(const PersistentPtr<T> &a, U *b) noexcept                \
    {                                                                                \
        using C = detail::common_ptr<T, U>;                                          \
        return detail::addr_as<C>(a.get()) op detail::addr_as<C>(b);                 \
    }                                                                                \
    template <class T, class U, detail::if_comparable<T, U> = 0>                     \
    inline bool operator op(T *a, const PersistentPtr<U> &b) noexcept                \
    {                                                                                \
        using C = detail::common_ptr<T, U>;                                          \
        return detail::addr_as<C>(a) op detail::addr_as<C>(b.get());                 \
    }
PERSISTENT_MEM_PTR_CMP(==)
PERSISTENT_MEM_PTR_CMP(!=)
PERSISTENT_MEM_PTR_CMP(<)
PERSISTENT_MEM_PTR_CMP(>)
PERSISTENT_MEM_PTR_CMP(<=)
PERSISTENT_MEM_PTR_CMP(>=)
#undef PERSISTENT_MEM_PTR_CMP

template <class T> inline bool operator==(const PersistentPtr<T> &p, std::nullptr_t) noexcept
{
    return !p;
}
template <class T> inline bool operator==(std::nullptr_t, const PersistentPtr<T> &p) noexcept
{
    return !p;
}
template <class T> inline bool operator!=(const PersistentPtr<T> &p, std::nullptr_t) noexcept
{
    return static_cast<bool>(p);
}
template <class T> inline bool operator!=(std::nullptr_t, const PersistentPtr<T> &p) noexcept
{
    return static_cast<bool>(p);
}

template <class T> inline void swap(PersistentPtr<T> &a, PersistentPtr<T> &b) noexcept
{
    a.swap(b);
}

/* [seed] A PersistentPtr to ptr, which lies in space. */
template <class T>
inline PersistentPtr<T> make_persistent_ptr(T *ptr, allocator_space_t *space) noexcept
{
    return PersistentPtr<T>(ptr, space);
}

/* The casts of std::shared_ptr, for PersistentPtr. */
template <class T, class U>
inline PersistentPtr<T> static_pointer_cast(const PersistentPtr<U> &p) noexcept
{
    return PersistentPtr<T>(static_cast<T *>(p.get()));
}
template <class T, class U>
inline PersistentPtr<T> const_pointer_cast(const PersistentPtr<U> &p) noexcept
{
    return PersistentPtr<T>(const_cast<T *>(p.get()));
}
template <class T, class U>
inline PersistentPtr<T> reinterpret_pointer_cast(const PersistentPtr<U> &p) noexcept
{
    return PersistentPtr<T>(reinterpret_cast<T *>(p.get()));
}
template <class T, class U>
inline PersistentPtr<T> dynamic_pointer_cast(const PersistentPtr<U> &p) noexcept
{
    return PersistentPtr<T>(dynamic_cast<T *>(p.get()));
}

/* A PersistentPtr<T> slot that is read and written atomically, lock-free:
 * one std::atomic<uint64_t> holding the same encoding as PersistentPtr, so
 * it may live in a space (a zeroed one is null) and survives remapping and
 * copies within the space like PersistentPtr does.  The operations are
 * those of std::atomic<T *>, taking and returning PersistentPtr<T> (or T *).
 *
 * compare_exchange compares targets, not words: if the slot holds the
 * expected target under another encoding (its bytes were copied in from
 * outside the space), the exchange still succeeds. */
template <class T> class AtomicPersistentPtr {
public:
    using value_type = PersistentPtr<T>;

    static constexpr bool is_always_lock_free =
        std::atomic<std::uint64_t>::is_always_lock_free;
    static_assert(is_always_lock_free, "AtomicPersistentPtr must be lock-free");

    AtomicPersistentPtr() noexcept : word_(0) {}
    AtomicPersistentPtr(T *raw) noexcept : word_(detail::encode(detail::at(this), raw)) {}
    AtomicPersistentPtr(const PersistentPtr<T> &p) noexcept
        : word_(detail::encode(detail::at(this), p.get()))
    {
    }
    AtomicPersistentPtr(const AtomicPersistentPtr &) = delete;
    AtomicPersistentPtr &operator=(const AtomicPersistentPtr &) = delete;

    /* true (asserted above); no call into libatomic */
    bool is_lock_free() const noexcept { return is_always_lock_free; }

    PersistentPtr<T> load(std::memory_order order = std::memory_order_seq_cst) const noexcept
    {
        return PersistentPtr<T>(raw(word_.load(order)));
    }
    /* load() as a raw pointer, without building a PersistentPtr. */
    T *load_raw(std::memory_order order = std::memory_order_seq_cst) const noexcept
    {
        return raw(word_.load(order));
    }
    operator PersistentPtr<T>() const noexcept { return load(); }

    void store(T *desired, std::memory_order order = std::memory_order_seq_cst) noexcept
    {
        word_.store(detail::encode(detail::at(this), desired), order);
    }
    void store(const PersistentPtr<T> &desired,
               std::memory_order order = std::memory_order_seq_cst) noexcept
    {
        store(desired.get(), order);
    }
    AtomicPersistentPtr &operator=(const PersistentPtr<T> &desired) noexcept
    {
        store(desired.get());
        return *this;
    }
    AtomicPersistentPtr &operator=(T *desired) noexcept
    {
        store(desired);
        return *this;
    }

    PersistentPtr<T> exchange(const PersistentPtr<T> &desired,
                              std::memory_order order = std::memory_order_seq_cst) noexcept
    {
        return PersistentPtr<T>(raw(word_.exchange(detail::encode(detail::at(this), desired.get()), order)));
    }
    PersistentPtr<T> exchange(T *desired,
                              std::memory_order order = std::memory_order_seq_cst) noexcept
    {
        return PersistentPtr<T>(raw(word_.exchange(detail::encode(detail::at(this), desired), order)));
    }

    bool compare_exchange_weak(PersistentPtr<T> &expected, const PersistentPtr<T> &desired,
                               std::memory_order success,
                               std::memory_order failure) noexcept
    {
        T *e = expected.get();
        if (cas(e, desired.get(), success, failure, true))
            return true;
        expected = e;
        return false;
    }
    bool compare_exchange_strong(PersistentPtr<T> &expected, const PersistentPtr<T> &desired,
                                 std::memory_order success,
                                 std::memory_order failure) noexcept
    {
        T *e = expected.get();
        if (cas(e, desired.get(), success, failure, false))
            return true;
        expected = e;
        return false;
    }
    bool compare_exchange_weak(PersistentPtr<T> &expected, const PersistentPtr<T> &desired,
                               std::memory_order order = std::memory_order_seq_cst) noexcept
    {
        return compare_exchange_weak(expected, desired, order, failure_order(order));
    }
    bool compare_exchange_strong(PersistentPtr<T> &expected, const PersistentPtr<T> &desired,
                                 std::memory_order order = std::memory_order_seq_cst) noexcept
    {
        return compare_exchange_strong(expected, desired, order, failure_order(order));
    }

    /* The same with raw pointers: no PersistentPtr temporaries. */
    bool compare_exchange_weak(T *&expected, T *desired, std::memory_order success,
                               std::memory_order failure) noexcept
    {
        return cas(expected, desired, success, failure, true);
    }
    bool compare_exchange_strong(T *&expected, T *desired, std::memory_order success,
                                 std::memory_order failure) noexcept
    {
        return cas(expected, desired, success, failure, false);
    }
    bool compare_exchange_weak(T *&expected, T *desired,
                               std::memory_order order = std::memory_order_seq_cst) noexcept
    {
        return cas(expected, desired, order, failure_order(order), true);
    }
    bool compare_exchange_strong(T *&expected, T *desired,
                                 std::memory_order order = std::memory_order_seq_cst) noexcept
    {
        return cas(expected, desired, order, failure_order(order), false);
    }

private:
    T *raw(std::uint64_t w) const noexcept { return static_cast<T *>(detail::decode(detail::at(this), w)); }

    static constexpr std::memory_order failure_order(std::memory_order o) noexcept
    {
        return o == std::memory_order_acq_rel   ? std::memory_order_acquire
               : o == std::memory_order_release ? std::memory_order_relaxed
                                                : o;
    }

    /* On failure expected becomes the current target. */
    bool cas(T *&expected, T *desired, std::memory_order success, std::memory_order failure,
             bool weak) noexcept
    {
        std::uint64_t want = detail::encode(detail::at(this), expected);
        const std::uint64_t put = detail::encode(detail::at(this), desired);
        for (;;) {
            const std::uint64_t tried = want;
            const bool ok = weak ? word_.compare_exchange_weak(want, put, success, failure)
                                 : word_.compare_exchange_strong(want, put, success, failure);
            if (ok)
                return true;
            T *now = raw(want);
            if (now != expected) {
                expected = now;
                return false;
            }
            if (want == tried) /* a weak CAS failing spuriously */
                return false;
            /* the expected target under another encoding: retry on it */
        }
    }

    std::atomic<std::uint64_t> word_;
};

static_assert(sizeof(AtomicPersistentPtr<int>) == 8, "AtomicPersistentPtr is one word");

} // namespace persistent_mem

namespace std {
/* Hashes the address pointed to, as std::hash<T *> does. */
template <class T> struct hash<persistent_mem::PersistentPtr<T>> {
    size_t operator()(const persistent_mem::PersistentPtr<T> &p) const noexcept
    {
        return hash<const volatile void *>()(p.get());
    }
};
} // namespace std

#endif

/* persistent_allocator.hpp: PersistentAllocator<T>, an allocator whose
 * pointer type is PersistentPtr<T>, for standard and Boost containers that
 * live inside a space (or outside, allocating from one).
 *
 * The allocator is stateful: it names its space in one word with
 * PersistentPtr's encoding, so a container placed inside a space finds its
 * space again after the space is mapped at another address.  Its pointer,
 * const_pointer, void_pointer and const_void_pointer are PersistentPtr<T>,
 * <const T>, <void>, <const void>; a container that stores those types keeps
 * working after a remap.
 *
 * Which containers (checked by compiling and running tests/cpp/ with
 * libstdc++ 12 and Boost 1.74; tests/cpp/meson.build repeats the compile
 * checks on the machine that builds):
 *
 *   Survive a remap of the space that holds them:
 *     boost::container  vector, deque, list, map, flat_map, basic_string
 *                       (tested across processes); every internal link is
 *                       the allocator's pointer type or its rebinding, so
 *                       the other node containers built on the same
 *                       machinery (slist, set, multimap, stable_vector)
 *                       compile and run too, untested across a remap
 *     std::vector, std::deque: every internal pointer is the allocator's
 *                       pointer (or pointer_traits::rebind of it)
 *     std::basic_string: the data pointer is the allocator's pointer; a
 *                       short string points at its own buffer, which is
 *                       right after a remap (the offset is from the base)
 *                       but not after copying the string's bytes elsewhere.
 *                       libstdc++ returns that pointer as a _CharT *, which
 *                       is why PersistentPtr to a character type (only)
 *                       converts implicitly to a raw pointer
 *
 *   Do not compile (libstdc++ 12):
 *     std::list, std::map, std::multimap, std::set, std::multiset: the
 *                       node code assigns allocate()'s result to a raw node
 *                       pointer (_Node* / _Link_type), which needs an
 *                       implicit conversion PersistentPtr -> T*.  That
 *                       conversion is left out on purpose: those nodes link
 *                       to each other with raw pointers, so the container
 *                       would compile and then break at the first remap.
 *
 *   Refused at compile time:
 *     std::vector<bool>: libstdc++ keeps its begin and end as bit iterators
 *                       (_Bit_iterator) that hold raw word pointers, not the
 *                       allocator's pointer, so it would compile and then
 *                       crash after a remap.  This header declares the
 *                       specialization for PersistentAllocator<bool> and
 *                       never defines it: using it is an "incomplete type"
 *                       error.  Use a vector of char, or
 *                       boost::container::vector<bool> (a plain vector).
 *
 *   Compile, but are not remap-safe (use within one mapping only):
 *     std::forward_list, std::unordered_map/set/multimap/multiset: they
 *                       convert the allocator's pointer with to_address and
 *                       link nodes and buckets with raw pointers.
 *
 * GCC 12 at -O2 may report "'__capacity' may be used uninitialized" inside
 * libstdc++'s std::basic_string move assignment with this allocator.  It is
 * a false positive: the variable is read only when the string's old
 * pointer is non-null, which is never the case with an allocator that is
 * not always equal; GCC loses track of that once the pointer object's
 * address has gone to persistent_space_of() (which get() must call for a
 * pointer stored in a space).  Build such code with
 * -Wno-maybe-uninitialized, as this project's tests and example do.
 *
 * A default-constructed PersistentAllocator allocates from the space that
 * contains the allocator object itself.  That is what lets a container in a
 * space default-construct the containers it holds (a map's operator[], a
 * vector's resize): they are built in place, inside the space, and find it.
 * Copying an allocator binds the copy to the space the source allocates
 * from.  A default-constructed allocator outside every space has no space:
 * allocate() throws std::bad_alloc.
 *
 * The propagate_on_container_* traits are true, so container assignment
 * and swap carry the allocator along; two allocators are equal when they
 * allocate from the same space.
 */
#ifndef PERSISTENT_MEM_PERSISTENT_ALLOCATOR_HPP
#define PERSISTENT_MEM_PERSISTENT_ALLOCATOR_HPP

#include "persistent_ptr.hpp"
#include "persistent_space.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <type_traits>
#include <vector>

namespace persistent_mem {

template <class T> class PersistentAllocator {
    template <class U> friend class PersistentAllocator;

public:
    using value_type = T;
    using pointer = PersistentPtr<T>;
    using const_pointer = PersistentPtr<const T>;
    using void_pointer = PersistentPtr<void>;
    using const_void_pointer = PersistentPtr<const void>;
    using size_type = std::size_t;
    using difference_type = std::ptrdiff_t;
    using propagate_on_container_copy_assignment = std::true_type;
    using propagate_on_container_move_assignment = std::true_type;
    using propagate_on_container_swap = std::true_type;
    using is_always_equal = std::false_type;

    template <class U> struct rebind {
        using other = PersistentAllocator<U>;
    };

    /* Allocates from the space that contains this allocator object (none
     * outside every space). */
    PersistentAllocator() noexcept : word_(0) {}

    /* Allocates from space (nullptr: as the default constructor). */
    PersistentAllocator(allocator_space_t *space) noexcept : word_(detail::encode(detail::at(this), space)) {}
    PersistentAllocator(const PersistentSpace &space) noexcept
        : word_(detail::encode(detail::at(this), space.unwrap()))
    {
    }
    PersistentAllocator(const Space &space) noexcept : word_(detail::encode(detail::at(this), space.get()))
    {
    }

    PersistentAllocator(const PersistentAllocator &other) noexcept
        : word_(detail::encode(detail::at(this), other.space()))
    {
    }
    template <class U>
    PersistentAllocator(const PersistentAllocator<U> &other) noexcept
        : word_(detail::encode(detail::at(this), other.space()))
    {
    }
    ~PersistentAllocator() = default;

    PersistentAllocator &operator=(const PersistentAllocator &other) noexcept
    {
        word_ = detail::encode(detail::at(this), other.space());
        return *this;
    }

    /* The space allocated from, at its current address; nullptr if none. */
    allocator_space_t *space() const noexcept
    {
        if (word_ != 0)
            return static_cast<allocator_space_t *>(detail::decode(detail::at(this), word_));
        return detail::home_of(detail::at(this));
    }

    /* Room for n T, aligned for T.  Throws std::bad_array_new_length when
     * n is above max_size(), std::bad_alloc without a space or when the
     * space is full.  n == 0 gives a distinct, freeable block. */
    pointer allocate(size_type n)
    {
        if (n > max_size())
            throw std::bad_array_new_length();
        allocator_space_t *s = space();
        if (s == nullptr)
            throw std::bad_alloc();
        const std::size_t bytes = n ? n * sizeof(T) : 1;
        void *p = alignof(T) > 16 ? persistent_aligned_alloc(s, alignof(T), bytes)
                                  : persistent_malloc(s, bytes);
        if (p == nullptr)
            throw std::bad_alloc();
        return pointer(static_cast<T *>(p));
    }
    pointer allocate(size_type n, const_void_pointer /*hint*/) { return allocate(n); }

    void deallocate(pointer p, size_type /*n*/) noexcept
    {
        T *raw = p.get();
        if (raw != nullptr)
            persistent_free(space(), const_cast<std::remove_cv_t<T> *>(raw));
    }

    size_type max_size() const noexcept
    {
        return std::numeric_limits<size_type>::max() / sizeof(T);
    }

    template <class U>
    friend bool operator==(const PersistentAllocator &a, const PersistentAllocator<U> &b) noexcept
    {
        return a.space() == b.space();
    }
    template <class U>
    friend bool operator!=(const PersistentAllocator &a, const PersistentAllocator<U> &b) noexcept
    {
        return a.space() != b.space();
    }

private:
    std::uint64_t word_;
};

static_assert(sizeof(PersistentAllocator<int>) == 8, "PersistentAllocator is one word");

} // namespace persistent_mem

namespace std {
/* Declared, never defined: see "Refused at compile time" above.  (A
 * specialization that depends on a program-defined type, which the
 * standard allows.) */
template <> class vector<bool, persistent_mem::PersistentAllocator<bool>>;
} // namespace std

#endif

// std::vector<bool> with PersistentAllocator: its bit iterators hold raw
// pointers (libstdc++), so it would break after a remap.
#include <persistent_allocator.hpp>

#include <vector>

#ifdef PM_MISUSE
using T = bool;
#else
using T = char;
#endif

std::size_t f(allocator_space_t *s)
{
    std::vector<T, persistent_mem::PersistentAllocator<T>> v{
        persistent_mem::PersistentAllocator<T>(s)};
    v.push_back(true);
    return v.size();
}

// tx_delete of an object whose destructor does something (here frees its
// vector's buffer with a plain free, which an abort would not undo).
#include <persistent_allocator.hpp>
#include <persistent_tx.hpp>

#include <vector>

using namespace persistent_mem;

struct Obj {
#ifdef PM_MISUSE
    std::vector<long, PersistentAllocator<long>> v;
#else
    PersistentPtr<long> v;
#endif
    long n;
};

void f(allocator_space_t *s, Obj *o)
{
    tx_delete(s, o);
}

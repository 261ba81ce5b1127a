// tx_new of a type aligned beyond 16 bytes: persistent_tx_alloc promises 16.
#include <persistent_tx.hpp>

#ifdef PM_MISUSE
struct alignas(32) W {
    char c[32];
};
#else
struct alignas(16) W {
    char c[32];
};
#endif

W *f(allocator_space_t *s)
{
    return persistent_mem::tx_new<W>(s);
}

// A null path is no path: a scratch space in memory is Space::scratch, and
// Space(nullptr, ...) does not compile (it would otherwise build a
// std::string from a null pointer).
#include <persistent_space.hpp>

using namespace persistent_mem;

void f()
{
#ifdef PM_MISUSE
    Space sp(nullptr, Space::scratch_options(1u << 20));
#else
    Space sp = Space::scratch(Space::scratch_options(1u << 20));
#endif
}

void g()
{
    std::error_code ec;
#ifdef PM_MISUSE
    Space sp = Space::open(nullptr, Space::scratch_options(1u << 20), ec);
#else
    Space sp = Space::scratch(Space::scratch_options(1u << 20), ec);
#endif
}

void h()
{
#ifdef PM_MISUSE
    Space sp(nullptr, 1u << 20);
#else
    Space sp = Space::scratch(1u << 20);
#endif
}

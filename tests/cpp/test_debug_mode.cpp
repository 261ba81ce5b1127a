// The headers under libstdc++'s debug mode (this file is built with
// -D_GLIBCXX_DEBUG, its checked iterators and containers): a vector, a
// deque and a string with PersistentAllocator in a space, changed,
// shrunk to fit, and read back after the space is mapped elsewhere.
// <persistent_allocator.hpp> comes first on purpose: with <functional>
// read before <iterator>, shrink_to_fit() did not compile here.
#include <persistent_allocator.hpp>

#include "cpp_test.hpp"

#include <deque>
#include <string>
#include <vector>

using namespace persistent_mem;

namespace {

template <class T> using A = PersistentAllocator<T>;
using Str = std::basic_string<char, std::char_traits<char>, A<char>>;

struct Root {
    std::vector<long, A<long>> v;
    std::deque<long, A<long>> d;
    Str s;
};

constexpr std::uint64_t tag = 0xdeb6;

void fill(Root *r)
{
    for (long i = 0; i < 1000; i++) {
        r->v.push_back(i);
        r->d.push_front(i);
    }
    r->v.erase(r->v.begin() + 100, r->v.end());
    r->d.erase(r->d.begin() + 100, r->d.end());
    r->v.shrink_to_fit();
    r->d.shrink_to_fit();
    r->s.assign(300, 'x');
    r->s.resize(40);
    r->s.shrink_to_fit();
}

void check(const Root *r)
{
    REQUIRE(r != nullptr);
    CHECK_EQ(r->v.size(), 100);
    CHECK_EQ(r->d.size(), 100);
    long bad = 0;
    for (long i = 0; i < 100; i++)
        bad += r->v[static_cast<std::size_t>(i)] != i ||
               r->d[static_cast<std::size_t>(i)] != 999 - i;
    CHECK_EQ(bad, 0);
    CHECK_EQ(r->s.size(), 40);
    CHECK(r->s.find_first_not_of('x') == Str::npos);
}

} // namespace

int main()
{
    std::string p = pmt::path("debug_mode");
    allocator_space_t *s = create_persistent_allocator(p.c_str(), 8u << 20);
    REQUIRE(s != nullptr);
    Root *r = PersistentSpace(s).find_or_construct_root<Root>(tag);
    REQUIRE(r != nullptr);
    fill(r);
    check(r);
    s = pmt::reopen_elsewhere(s, p);
    REQUIRE(s != nullptr);
    r = PersistentSpace(s).find_root<Root>(tag);
    check(r);
    CHECK_EQ(PersistentSpace(s).destroy_root<Root>(tag), 0);
    destroy_persistent_allocator(s);
    return pmt::done();
}

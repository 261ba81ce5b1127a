/* Boost.Container with PersistentAllocator, living in a space, across
 * processes: a map of strings to vectors, a deque of strings, a vector of
 * vectors, a list, a flat_map, a string.
 *
 *   build   (process 1) builds them in a root, checks them
 *   mutate  (process 2, at an address the space never had) checks, mutates
 *           (erase, insert, operator[] building a vector inside a node,
 *           growth of short strings into long ones), checks again
 *   verify  (process 3, at yet another address) checks the mutated state,
 *           runs the destructors and finds every block freed
 * Without Boost it reports SKIP. */
#ifdef PM_TEST_NO_BOOST
#include <cstdio>
int main()
{
    std::printf("SKIP: built without Boost (-Dboost=disabled or not found)\n");
    return 77;
}
#else
#include <persistent_allocator.hpp>
#include <persistent_space.hpp>

#include <boost/container/deque.hpp>
#include <boost/container/flat_map.hpp>
#include <boost/container/list.hpp>
#include <boost/container/map.hpp>
#include <boost/container/string.hpp>
#include <boost/container/vector.hpp>

#include <algorithm>
#include <string>
#include <string_view>

#include "container_test.hpp"

using namespace persistent_mem;
namespace bc = boost::container;

namespace {

template <class T> using A = PersistentAllocator<T>;
using Str = bc::basic_string<char, std::char_traits<char>, A<char>>;
using Vec = bc::vector<int, A<int>>;

using ctest::same_ints;
using ctest::sv;

/* Orders Str and std::string alike, so lookups need no Str. */
struct Less {
    using is_transparent = void;
    template <class X, class Y> bool operator()(const X &x, const Y &y) const
    {
        return sv(x) < sv(y);
    }
};

using Table = bc::map<Str, Vec, Less, A<std::pair<const Str, Vec>>>;
using Index = bc::flat_map<int, Str, std::less<int>, A<std::pair<int, Str>>>;

constexpr std::uint64_t root_tag = 0x626f6f73742d6374ull;

struct Root {
    Table table;
    bc::deque<Str, A<Str>> words;
    bc::vector<Vec, A<Vec>> matrix;
    Str title;
    bc::list<long, A<long>> numbers;
    Index index; /* i -> key(i) for the keys in the table */
};

void verify(Root &r, const model::Model &m, allocator_space_t *s, const char *when)
{
    const int before = pmt::failures;
    ctest::check_table_in_order(r.table, m);
    /* lookups through the tree */
    for (const auto &e : m.table) {
        auto it = r.table.find(e.first);
        if (it == r.table.end() || !same_ints(it->second, e.second)) {
            std::fprintf(stderr, "find(%s) failed\n", e.first.c_str());
            pmt::failures++;
            break;
        }
    }
    CHECK(r.table.find(std::string("no such key")) == r.table.end());

    ctest::check_sequences(r, m);

    std::size_t n_index = 0;
    for (int i = 0; i < model::n_keys + model::n_new_keys; i++) {
        const std::string k = model::key(i);
        auto it = r.index.find(i);
        const bool want = m.table.count(k) != 0;
        if ((it != r.index.end()) != want || (want && sv(it->second) != k)) {
            std::fprintf(stderr, "index[%d] wrong\n", i);
            pmt::failures++;
            break;
        }
        n_index += want;
    }
    CHECK_EQ(r.index.size(), n_index);

    CHECK(persistent_space_of(&*r.table.begin()) == s);
    CHECK(persistent_space_of(&r.numbers.back()) == s);
    CHECK(persistent_space_of(r.words.back().data()) == s);
    CHECK(r.table.get_allocator().space() == s);
    CHECK(r.table.begin()->second.get_allocator().space() == s);
    if (pmt::failures != before)
        std::fprintf(stderr, "  (checks %s)\n", when);
}

int build(const std::string &path)
{
    Space sp(path, 32u << 20);
    Root *r = sp.find_or_construct_root<Root>(root_tag);
    REQUIRE(r != nullptr);
    const model::Model m = model::stage1();
    A<char> a(sp);
    for (int i = model::n_keys - 1; i >= 0; i--) {
        const std::vector<int> v = model::values(i);
        r->table.emplace(Str(model::key(i).c_str(), a), Vec(v.begin(), v.end(), a));
        r->index.emplace(i, Str(model::key(i).c_str(), a));
    }
    ctest::build_sequences(*r, a, m);
    verify(*r, m, sp.get(), "after build");
    return pmt::done();
}

int mutate(const std::string &path)
{
    Space sp = ctest::open_elsewhere(path);
    Root *r = sp.find_root<Root>(root_tag);
    REQUIRE(r != nullptr);
    verify(*r, model::stage1(), sp.get(), "after reopening at a new address");

    A<char> a(sp);
    for (int i = 0; i < model::n_keys; i++) {
        auto it = r->table.find(model::key(i));
        REQUIRE(it != r->table.end());
        if (i % 5 == 0) {
            r->table.erase(it);
            CHECK_EQ(r->index.erase(i), 1);
        } else {
            it->second.push_back(-i);
            it->second.push_back(-2 * i);
        }
    }
    for (int i = model::n_keys; i < model::n_keys + model::n_new_keys; i++) {
        /* operator[] default-constructs the vector inside the new node */
        r->table[Str(model::key(i).c_str(), a)].push_back(7 * i);
        r->index[i] = Str(model::key(i).c_str(), a);
    }
    ctest::mutate_sequences(*r, a);

    verify(*r, model::stage2(), sp.get(), "after mutating");
    persistent_check_report rep;
    CHECK_EQ(persistent_check(sp.get(), &rep), 0);
    return pmt::done();
}

} // namespace

int main(int argc, char **argv)
{
    return ctest::run(argc, argv, "boost-containers", build, mutate, [](const std::string &path) {
        return ctest::final_check<Root>(path, root_tag, verify);
    });
}
#endif

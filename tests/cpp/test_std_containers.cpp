/* libstdc++ containers with PersistentAllocator, living in a space, across
 * processes: std::vector, std::deque and std::basic_string (the ones whose
 * internal links are the allocator's pointer type), nested: a sorted
 * vector of (string, vector<int>) as a map, a deque of strings, a vector of
 * vectors grown by resize(), a string, a deque of numbers.
 *
 *   build   (process 1) builds them in a root, checks them
 *   mutate  (process 2, at an address the space never had) checks, mutates,
 *           checks again
 *   verify  (process 3, at yet another address) checks the mutated state,
 *           runs the destructors and finds every block freed */
#include <persistent_allocator.hpp>
#include <persistent_space.hpp>

#include <algorithm>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "container_test.hpp"

using namespace persistent_mem;

namespace {

template <class T> using A = PersistentAllocator<T>;
using Str = std::basic_string<char, std::char_traits<char>, A<char>>;
using IntVec = std::vector<int, A<int>>;
using Entry = std::pair<Str, IntVec>;
using Table = std::vector<Entry, A<Entry>>; /* sorted by key */

constexpr std::uint64_t root_tag = 0x7374642d636f6e74ull;

struct Root {
    Table table;
    std::deque<Str, A<Str>> words;
    std::vector<IntVec, A<IntVec>> matrix;
    Str title;
    std::deque<long, A<long>> numbers;
    /* every container default-constructed: inside the space, their
     * allocators find the space themselves */
};

using ctest::sv;

/* Where key k is or would go in the sorted table. */
Table::iterator lower_key(Table &t, const std::string &k)
{
    return std::lower_bound(t.begin(), t.end(), k, [](const Entry &e, const std::string &key) {
        return sv(e.first) < std::string_view(key);
    });
}

Table::iterator find_key(Table &t, const std::string &k)
{
    auto it = lower_key(t, k);
    return it != t.end() && sv(it->first) == k ? it : t.end();
}

/* Compares everything with the model; reports the first difference of each
 * kind. */
void verify(Root &r, const model::Model &m, allocator_space_t *s, const char *when)
{
    const int before = pmt::failures;
    ctest::check_table_in_order(r.table, m);
    ctest::check_sequences(r, m);

    /* the storage is in this space, at its current address */
    CHECK(persistent_space_of(r.table.data()) == s);
    CHECK(persistent_space_of(&r.words.back()) == s);
    CHECK(persistent_space_of(r.title.data()) == s);
    CHECK(r.table.get_allocator().space() == s);
    CHECK(r.words.front().get_allocator().space() == s);
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
    /* insert in an order other than sorted: exercises insert's moves */
    for (int i = model::n_keys - 1; i >= 0; i--) {
        const std::string k = model::key(i);
        auto pos = lower_key(r->table, k);
        const std::vector<int> v = model::values(i);
        r->table.emplace(pos, Str(k.c_str(), a), IntVec(v.begin(), v.end(), a));
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
        auto it = find_key(r->table, model::key(i));
        REQUIRE(it != r->table.end());
        if (i % 5 == 0) {
            r->table.erase(it);
        } else {
            it->second.push_back(-i);
            it->second.push_back(-2 * i);
        }
    }
    for (int i = model::n_keys; i < model::n_keys + model::n_new_keys; i++) {
        const std::string k = model::key(i);
        auto pos = lower_key(r->table, k);
        pos = r->table.emplace(pos, Str(k.c_str(), a), IntVec(a));
        pos->second.push_back(7 * i);
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
    return ctest::run(argc, argv, "std-containers", build, mutate, [](const std::string &path) {
        return ctest::final_check<Root>(path, root_tag, verify);
    });
}

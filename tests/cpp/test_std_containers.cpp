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

std::string_view sv(const Str &s)
{
    return std::string_view(s.data(), s.size());
}

Table::iterator find_key(Table &t, const std::string &k)
{
    auto it = std::lower_bound(t.begin(), t.end(), k, [](const Entry &e, const std::string &key) {
        return sv(e.first) < std::string_view(key);
    });
    return it != t.end() && sv(it->first) == k ? it : t.end();
}

template <class V> bool same_ints(const V &v, const std::vector<int> &want)
{
    return v.size() == want.size() && std::equal(v.begin(), v.end(), want.begin());
}

/* Compares everything with the model; reports the first difference of each
 * kind. */
void verify(Root &r, const model::Model &m, allocator_space_t *s, const char *when)
{
    const int before = pmt::failures;
    CHECK_EQ(r.table.size(), m.table.size());
    auto mt = m.table.begin();
    for (const Entry &e : r.table) {
        if (mt == m.table.end())
            break;
        if (sv(e.first) != mt->first || !same_ints(e.second, mt->second)) {
            std::fprintf(stderr, "table entry %s differs\n", mt->first.c_str());
            pmt::failures++;
            break;
        }
        ++mt;
    }
    CHECK_EQ(r.words.size(), m.words.size());
    for (std::size_t j = 0; j < std::min(r.words.size(), m.words.size()); j++)
        if (sv(r.words[j]) != m.words[j]) {
            std::fprintf(stderr, "word %zu: '%s' != '%s'\n", j, r.words[j].c_str(),
                         m.words[j].c_str());
            pmt::failures++;
            break;
        }
    CHECK_EQ(r.matrix.size(), m.matrix.size());
    for (std::size_t i = 0; i < std::min(r.matrix.size(), m.matrix.size()); i++)
        if (!same_ints(r.matrix[i], m.matrix[i])) {
            std::fprintf(stderr, "matrix row %zu differs\n", i);
            pmt::failures++;
            break;
        }
    CHECK(sv(r.title) == m.title);
    CHECK(std::string(r.title.c_str()) == m.title);
    CHECK(r.numbers.size() == m.numbers.size() &&
          std::equal(r.numbers.begin(), r.numbers.end(), m.numbers.begin()));

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
        auto pos = std::lower_bound(r->table.begin(), r->table.end(), k,
                                    [](const Entry &e, const std::string &key) {
                                        return sv(e.first) < std::string_view(key);
                                    });
        const std::vector<int> v = model::values(i);
        r->table.emplace(pos, Str(k.c_str(), a), IntVec(v.begin(), v.end(), a));
    }
    ctest::build_sequences(*r, a, m);
    verify(*r, m, sp.get(), "after build");
    return pmt::done();
}

int mutate(const std::string &path)
{
    const std::vector<std::uint64_t> earlier = pmt::occupy_earlier(path);
    Space sp(path, 0);
    for (std::uint64_t b : earlier)
        REQUIRE(pmt::addr(sp.get()) != b);
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
        auto pos = std::lower_bound(r->table.begin(), r->table.end(), k,
                                    [](const Entry &e, const std::string &key) {
                                        return sv(e.first) < std::string_view(key);
                                    });
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

/* What the std and the Boost container tests share: the sequence members
 * of their roots (words, matrix, title, numbers: the same members with the
 * same steps in both) and their checks, the check of a table's entries in
 * order, the reopening at an address the space never had, the third
 * process's check, and the dispatch of main to the three processes.  Each test keeps its own table, which is
 * what differs (a sorted vector of pairs, a map and a flat_map). */
#ifndef PM_CONTAINER_TEST_HPP
#define PM_CONTAINER_TEST_HPP

#include <persistent_space.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "container_model.hpp"
#include "cpp_test.hpp"

namespace ctest {

/* The characters of any string type with data() and size(). */
template <class S> std::string_view sv(const S &s)
{
    return std::string_view(s.data(), s.size());
}

template <class V> bool same_ints(const V &v, const std::vector<int> &want)
{
    return v.size() == want.size() && std::equal(v.begin(), v.end(), want.begin());
}

/* The table's entries, walked in order, are the model's (key, values);
 * reports the first difference. */
template <class Table> void check_table_in_order(const Table &t, const model::Model &m)
{
    CHECK_EQ(t.size(), m.table.size());
    auto mt = m.table.begin();
    for (const auto &e : t) {
        if (mt == m.table.end())
            break;
        if (sv(e.first) != mt->first || !same_ints(e.second, mt->second)) {
            std::fprintf(stderr, "table entry %s differs\n", mt->first.c_str());
            pmt::failures++;
            break;
        }
        ++mt;
    }
}

/* The sequences are the model's (numbers also walked backwards, through
 * the containers' back links); reports the first difference of each. */
template <class Root> void check_sequences(const Root &r, const model::Model &m)
{
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
    CHECK(std::equal(r.numbers.rbegin(), r.numbers.rend(), m.numbers.rbegin()));
}

/* Opens the space at path at an address it never had: the two addresses
 * of the earlier processes are occupied first. */
inline persistent_mem::Space open_elsewhere(const std::string &path,
                                            std::size_t expect_earlier = 0)
{
    const std::vector<std::uint64_t> earlier = pmt::occupy_earlier(path);
    if (expect_earlier)
        CHECK_EQ(earlier.size(), expect_earlier);
    persistent_mem::Space sp(path, 0);
    for (std::uint64_t b : earlier)
        REQUIRE(pmt::addr(sp.get()) != b);
    return sp;
}

/* Stage 1 of the sequences, built in place in the root r; a allocates the
 * strings. */
template <class Root, class CharAlloc>
void build_sequences(Root &r, const CharAlloc &a, const model::Model &m)
{
    using Str = decltype(r.title);
    for (int j = 0; j < model::n_words; j++)
        r.words.emplace_back(model::word(j).c_str(), a);
    for (int row = 0; row < model::n_rows; row++) {
        r.matrix.resize(r.matrix.size() + 1); /* default-constructed in place */
        for (int x : model::row(row, row * 3))
            r.matrix.back().push_back(x);
    }
    r.title = Str(m.title.c_str(), a);
    for (long i = 0; i < 5000; i++)
        r.numbers.push_back(i * i);
}

/* Stage 2 of the sequences: the steps model::stage2() applies to them. */
template <class Root, class CharAlloc>
void mutate_sequences(Root &r, const CharAlloc &a)
{
    using Str = decltype(r.title);
    for (int j = 0; j < 100; j++)
        r.words.pop_front();
    for (int j = model::n_words; j < model::n_words + 100; j++)
        r.words.push_back(Str(model::word(j).c_str(), a));
    for (std::size_t j = 0; j < r.words.size(); j += 10)
        r.words[j] += "+extended-to-a-long-string";
    r.matrix.resize(70);
    for (int row = 0; row < 70; row++) {
        auto &v = r.matrix[static_cast<std::size_t>(row)];
        const int len = row % 2 == 0 ? row : row * 3;
        if (v.size() > static_cast<std::size_t>(len))
            v.resize(static_cast<std::size_t>(len));
        for (int c = static_cast<int>(v.size()); c < len; c++)
            v.push_back(row * 1000 + c);
    }
    r.title += " / mutated by the second";
    for (int k = 0; k < 500; k++)
        r.numbers.pop_back();
    for (long k = 0; k < 500; k++)
        r.numbers.push_front(-k);
}

/* Process 3: at yet another address, checks the mutated state with
 * verify(root, model, space, when), runs the destructors and finds every
 * block freed. */
template <class Root, class Verify>
int final_check(const std::string &path, std::uint64_t tag, Verify verify)
{
    persistent_mem::Space sp = open_elsewhere(path, 2);
    Root *r = sp.find_root<Root>(tag);
    REQUIRE(r != nullptr);
    verify(*r, model::stage2(), sp.get(), "in the third process");
    /* the destructors free every block through the remapped allocators */
    CHECK_EQ(sp.destroy_root<Root>(tag), 0);
    persistent_stats st;
    REQUIRE(persistent_stats_get(sp.get(), &st) == 0);
    CHECK_EQ(st.live_blocks, 0);
    return pmt::done();
}

using Step = int (*)(const std::string &path);

/* main: with a role and a path, plays that process; without, runs the
 * three in turn, each freshly exec'd, on a new file named after name. */
inline int run(int argc, char **argv, const char *name, Step build, Step mutate,
               Step verify)
{
    if (argc == 3) {
        if (std::strcmp(argv[1], "build") == 0)
            return build(argv[2]);
        if (std::strcmp(argv[1], "mutate") == 0)
            return mutate(argv[2]);
        if (std::strcmp(argv[1], "verify") == 0)
            return verify(argv[2]);
        return 2;
    }
    const std::string path = pmt::path(name);
    CHECK_EQ(pmt::run_self({"build", path}), 0);
    CHECK_EQ(pmt::run_self({"mutate", path}), 0);
    CHECK_EQ(pmt::run_self({"verify", path}), 0);
    return pmt::done();
}

} // namespace ctest

#endif

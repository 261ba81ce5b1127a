/* An automatic transaction makes a Boost container's update crash-atomic
 * with no change to the container's code (G7): a
 * boost::container::map<string, vector<int>> through PersistentAllocator.
 *
 * The sequence: for i = 0..N-1, in an automatic transaction, insert key i
 * with a vector of i + 1 ints (a long string key every third), erase key
 * i - 3 when i is odd, and count the operation in the root; every fourth
 * transaction aborts instead.  Killed at every crash point in turn (each
 * flush and fence), the reopened space must be consistent and hold exactly
 * the map after its counted operations; an abort must leave the map as it
 * was byte for byte (same contents, same live blocks).
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
#include <persistent_tx.hpp>

#include <boost/container/map.hpp>
#include <boost/container/string.hpp>
#include <boost/container/vector.hpp>

#include <map>
#include <string>
#include <string_view>

#include "cpp_test.hpp"

/* test support of the internal library (src/crashsim.c; internal.h is C) */
extern "C" void pm_crash_arm(std::uint64_t at, int mode, std::uint64_t seed);
constexpr int PM_CRASH_KILL = 1;

using namespace persistent_mem;
namespace bc = boost::container;

namespace {

template <class T> using A = PersistentAllocator<T>;
using Str = bc::basic_string<char, std::char_traits<char>, A<char>>;
using Vec = bc::vector<int, A<int>>;

struct Less {
    using is_transparent = void;
    static std::string_view sv(const Str &s) { return std::string_view(s.data(), s.size()); }
    static std::string_view sv(const std::string &s) { return s; }
    template <class X, class Y> bool operator()(const X &x, const Y &y) const
    {
        return sv(x) < sv(y);
    }
};

using Table = bc::map<Str, Vec, Less, A<std::pair<const Str, Vec>>>;

struct Root {
    explicit Root(allocator_space_t *s) : table(Less(), A<std::pair<const Str, Vec>>(s)), ops(0) {}
    Table table;
    long ops; /* operations committed */
};

constexpr std::uint64_t tag = 0x6175746f74786e31ull;
constexpr int N = 12;

std::string key(int i)
{
    std::string k = "key-" + std::to_string(i);
    if (i % 3 == 0)
        k += " with a tail long enough to leave the short-string buffer";
    return k;
}

/* Operation i on the table, and on a model of it. */
void op(Table &t, int i, allocator_space_t *s)
{
    std::string k = key(i);
    t.emplace(Str(k.c_str(), A<char>(s)), Vec(static_cast<size_t>(i + 1), i, A<int>(s)));
    if (i % 2 == 1 && i >= 3) {
        auto it = t.find(key(i - 3));
        if (it != t.end())
            t.erase(it);
    }
}

void op(std::map<std::string, std::vector<int>> &m, int i)
{
    m.emplace(key(i), std::vector<int>(static_cast<size_t>(i + 1), i));
    if (i % 2 == 1 && i >= 3)
        m.erase(key(i - 3));
}

std::map<std::string, std::vector<int>> model(long ops)
{
    std::map<std::string, std::vector<int>> m;
    long done = 0;
    for (int i = 0; i < N && done < ops; i++) {
        if (i % 4 == 3)
            continue; /* aborted */
        op(m, i);
        done++;
    }
    return m;
}

bool same(const Table &t, const std::map<std::string, std::vector<int>> &m)
{
    if (t.size() != m.size())
        return false;
    auto it = m.begin();
    for (const auto &kv : t) {
        if (Less::sv(kv.first) != it->first || kv.second.size() != it->second.size())
            return false;
        for (size_t j = 0; j < kv.second.size(); j++)
            if (kv.second[j] != it->second[j])
                return false;
        ++it;
    }
    return true;
}

allocator_space_t *open_space(const std::string &p)
{
    persistent_options o{};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = 4u << 20;
    allocator_space_t *s = nullptr;
    return persistent_space_open(p.c_str(), &o, &s) == 0 ? s : nullptr;
}

void run(allocator_space_t *s)
{
    Root *r = static_cast<Root *>(persistent_find_root(s, tag));
    for (int i = 0; i < N; i++) {
        REQUIRE(persistent_tx_begin_auto(s) == 0);
        op(r->table, i, s);
        if (i % 4 == 3) {
            REQUIRE(persistent_tx_abort(s) == 0);
        } else {
            r->ops++;
            REQUIRE(persistent_tx_commit(s) == 0);
        }
    }
}

std::string make_template()
{
    std::string p = pmt::path("auto-tmpl");
    allocator_space_t *s = open_space(p);
    REQUIRE(s != nullptr);
    REQUIRE(PersistentSpace(s).find_or_construct_root<Root>(tag, s) != nullptr);
    /* the thread's log exists before the sweeps */
    REQUIRE(persistent_tx_begin(s) == 0 && persistent_tx_commit(s) == 0);
    REQUIRE(persistent_space_close(s) == 0);
    return p;
}

int child(const std::string &p, std::uint64_t k)
{
    pm_crash_arm(k, PM_CRASH_KILL, k);
    allocator_space_t *s = open_space(p);
    if (s == nullptr)
        return 3;
    run(s);
    persistent_space_close(s);
    return 0;
}

void copy_file(const std::string &from, const std::string &to)
{
    std::string cmd = "cp '" + from + "' '" + to + "'";
    REQUIRE(std::system(cmd.c_str()) == 0);
}

/* Every crash point of the sequence. */
void sweep(const std::string &tmpl)
{
    std::string work = pmt::path("auto-work");
    std::uint64_t k;
    int failures = 0;
    for (k = 1;; k++) {
        copy_file(tmpl, work);
        std::fflush(nullptr);
        pid_t pid = fork();
        if (pid == 0)
            _exit(child(work, k));
        int st;
        waitpid(pid, &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            break;
        REQUIRE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        allocator_space_t *s = open_space(work);
        if (s == nullptr) {
            std::fprintf(stderr, "k=%llu: reopen: %s\n", (unsigned long long)k,
                         persistent_errormsg());
            failures++;
            continue;
        }
        persistent_check_report rep;
        if (persistent_check(s, &rep) != 0) {
            std::fprintf(stderr, "k=%llu: check: %s\n", (unsigned long long)k,
                         rep.first_error);
            failures++;
        }
        Root *r = static_cast<Root *>(persistent_find_root(s, tag));
        if (r == nullptr || !same(r->table, model(r->ops))) {
            std::fprintf(stderr, "k=%llu: the map is not the one after %ld operations\n",
                         (unsigned long long)k, r ? r->ops : -1L);
            failures++;
        }
        persistent_space_close(s);
    }
    std::printf("automatic transactions on a boost map: %llu crash points, %d failures\n",
                (unsigned long long)(k - 1), failures);
    CHECK_EQ(failures, 0);
    CHECK(k > 50);
}

/* An abort leaves everything as it was. */
void abort_exact(const std::string &tmpl)
{
    std::string p = pmt::path("auto-abort");
    copy_file(tmpl, p);
    allocator_space_t *s = open_space(p);
    REQUIRE(s != nullptr);
    run(s);
    Root *r = static_cast<Root *>(persistent_find_root(s, tag));
    CHECK(same(r->table, model(r->ops)));
    persistent_stats before, after;
    REQUIRE(persistent_stats_get(s, &before) == 0);
    REQUIRE(persistent_tx_begin_auto(s) == 0);
    for (int i = 100; i < 140; i++)
        op(r->table, i, s);
    r->table.clear();
    r->ops = -5;
    REQUIRE(persistent_tx_abort(s) == 0);
    REQUIRE(persistent_stats_get(s, &after) == 0);
    CHECK(same(r->table, model(r->ops)));
    CHECK_EQ(after.live_blocks, before.live_blocks);
    CHECK_EQ(after.live_bytes, before.live_bytes);
    persistent_check_report rep;
    CHECK_EQ(persistent_check(s, &rep), 0);
    /* the heap goes on after the rebuild */
    op(r->table, 998, s);
    CHECK(r->table.size() == model(r->ops).size() + 1);
    CHECK_EQ(persistent_check(s, &rep), 0);
    persistent_space_close(s);
}

} // namespace

int main()
{
    std::string tmpl = make_template();
    abort_exact(tmpl);
    sweep(tmpl);
    return pmt::done();
}
#endif

/* AtomicPersistentPtr: a Treiber stack living in the space, pushed and
 * popped by 8 threads at once with compare-exchange, every node accounted
 * for and its contents checked; then the stack is reopened in a new process
 * at another address and drained there.  Also the single-threaded
 * semantics of load/store/exchange/compare-exchange, including a slot whose
 * bytes hold the expected target under the other encoding. */
#include <persistent_ptr.hpp>
#include <persistent_space.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "cpp_test.hpp"

using namespace persistent_mem;

namespace {

constexpr int n_threads = 8;
constexpr std::uint32_t per_thread = 4000;
constexpr std::uint64_t stack_tag = 0x7472656962657221ull;

struct Node {
    PersistentPtr<Node> next;
    std::uint64_t value; /* thread << 32 | sequence */
    std::uint64_t check; /* a function of value: torn or reused nodes show */
};

std::uint64_t check_of(std::uint64_t v)
{
    std::uint64_t x = v ^ 0x5eed5eed5eed5eedull;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

struct Stack {
    AtomicPersistentPtr<Node> head;
    std::atomic<std::uint64_t> size;
};

static_assert(AtomicPersistentPtr<Node>::is_always_lock_free, "lock-free CAS");

void push(Stack *st, Node *n)
{
    PersistentPtr<Node> old = st->head.load(std::memory_order_relaxed);
    do {
        n->next = old;
        /* release: the node's contents before it is reachable */
    } while (!st->head.compare_exchange_weak(old, PersistentPtr<Node>(n), std::memory_order_release,
                                             std::memory_order_relaxed));
}

/* Popped nodes are never pushed again or freed while threads run, so the
 * pointer-only CAS has no ABA problem here. */
Node *pop(Stack *st)
{
    Node *old = st->head.load_raw(std::memory_order_acquire);
    while (old != nullptr) {
        Node *next = old->next.get();
        /* acquire: the popped node's contents as its pusher wrote them */
        if (st->head.compare_exchange_strong(old, next, std::memory_order_acquire,
                                             std::memory_order_acquire))
            break;
    }
    return old;
}

struct Tally {
    std::vector<std::vector<std::uint8_t>> seen;
    int bad = 0;
    Tally() : seen(n_threads, std::vector<std::uint8_t>(per_thread, 0)) {}
    void add(const Node *n)
    {
        const std::uint64_t t = n->value >> 32, i = n->value & 0xffffffffu;
        if (n->check != check_of(n->value) || t >= n_threads || i >= per_thread) {
            bad++;
            return;
        }
        seen[t][i]++;
    }
    int wrong_counts() const
    {
        int w = 0;
        for (const auto &row : seen)
            for (std::uint8_t c : row)
                w += c != 1;
        return w;
    }
};

void test_semantics(allocator_space_t *s)
{
    int *x = static_cast<int *>(persistent_malloc(s, 4 * sizeof(int)));
    REQUIRE(x != nullptr);
    auto *slot = ::new (persistent_malloc(s, sizeof(AtomicPersistentPtr<int>))) AtomicPersistentPtr<int>;
    CHECK(slot->is_lock_free());
    CHECK(!slot->load());
    slot->store(x);
    CHECK(slot->load().get() == x);
    CHECK(slot->load_raw() == x);
    CHECK(static_cast<PersistentPtr<int>>(*slot).get() == x);
    CHECK(slot->exchange(x + 1).get() == x);
    CHECK(slot->exchange(PersistentPtr<int>(x + 2)).get() == x + 1);

    /* compare-exchange with PersistentPtr operands: failure reports the
     * current target in expected, success stores desired */
    PersistentPtr<int> expected(x);
    CHECK(!slot->compare_exchange_strong(expected, PersistentPtr<int>(x + 3)));
    CHECK(expected.get() == x + 2);
    CHECK(slot->compare_exchange_strong(expected, PersistentPtr<int>(x + 3)));
    CHECK(slot->load_raw() == x + 3);
    expected = x + 3;
    while (!slot->compare_exchange_weak(expected, PersistentPtr<int>(nullptr)))
        CHECK(expected.get() == x + 3);
    CHECK(!slot->load());

    /* the same target under the other encoding: bytes of a pointer object
     * that lived outside the space copied into the slot hold an address,
     * where the slot would write an offset; compare-exchange compares
     * targets and still succeeds */
    AtomicPersistentPtr<int> outside(x);
    std::memcpy(static_cast<void *>(slot), static_cast<const void *>(&outside), sizeof outside);
    CHECK(slot->load_raw() == x);
    int *e = x;
    CHECK(slot->compare_exchange_strong(e, x + 1));
    CHECK(slot->load_raw() == x + 1);
    std::memcpy(static_cast<void *>(slot), static_cast<const void *>(&outside), sizeof outside);
    e = x;
    int spins = 0;
    while (!slot->compare_exchange_weak(e, x + 2) && spins < 1000) {
        CHECK(e == x);
        spins++;
    }
    CHECK(slot->load_raw() == x + 2);

    slot->~AtomicPersistentPtr<int>();
    persistent_free(s, slot);
    persistent_free(s, x);
}

int build(const std::string &path)
{
    Space space(path, 16u << 20);
    test_semantics(space.get());

    Stack *st = space.find_or_construct_root<Stack>(stack_tag);
    REQUIRE(st != nullptr);
    std::vector<std::vector<Node *>> popped(n_threads);
    std::atomic<int> ready{0};
    std::atomic<int> alloc_failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < n_threads; t++) {
        threads.emplace_back([&, t] {
            ready.fetch_add(1);
            while (ready.load() < n_threads)
                std::this_thread::yield();
            for (std::uint32_t i = 0; i < per_thread; i++) {
                Node *n = space.alloc<Node>();
                if (n == nullptr) {
                    alloc_failures.fetch_add(1);
                    return;
                }
                n->value = static_cast<std::uint64_t>(t) << 32 | i;
                n->check = check_of(n->value);
                push(st, n);
                if (i % 2 == 1) {
                    Node *p = pop(st);
                    if (p != nullptr)
                        popped[static_cast<std::size_t>(t)].push_back(p);
                }
            }
        });
    }
    for (std::thread &th : threads)
        th.join();
    CHECK_EQ(alloc_failures.load(), 0);

    /* what was popped plus what is left is everything, once */
    Tally all;
    std::size_t n_popped = 0;
    for (const auto &v : popped) {
        for (Node *n : v)
            all.add(n);
        n_popped += v.size();
    }
    std::vector<Node *> left;
    for (Node *n = st->head.load_raw(); n != nullptr; n = n->next.get())
        left.push_back(n);
    for (Node *n : left)
        all.add(n);
    CHECK_EQ(all.bad, 0);
    CHECK_EQ(all.wrong_counts(), 0);
    CHECK_EQ(n_popped + left.size(), std::size_t(n_threads) * per_thread);
    CHECK(n_popped > 0);

    /* push everything back for the next process */
    for (const auto &v : popped)
        for (Node *n : v)
            push(st, n);
    st->size.store(std::uint64_t(n_threads) * per_thread);
    persistent_check_report rep;
    CHECK_EQ(persistent_check(space.get(), &rep), 0);
    return pmt::done();
}

/* In a new process, at an address the space never had: drain the stack. */
int drain(const std::string &path)
{
    std::vector<std::uint64_t> earlier = pmt::occupy_earlier(path);
    Space space(path, 0);
    for (std::uint64_t b : earlier)
        CHECK(pmt::addr(space.get()) != b);
    Stack *st = space.find_root<Stack>(stack_tag);
    REQUIRE(st != nullptr);
    CHECK_EQ(st->size.load(), std::uint64_t(n_threads) * per_thread);

    /* drain with 8 threads too */
    std::vector<std::vector<Node *>> got(n_threads);
    std::vector<std::thread> threads;
    for (int t = 0; t < n_threads; t++)
        threads.emplace_back([&, t] {
            for (Node *n; (n = pop(st)) != nullptr;)
                got[static_cast<std::size_t>(t)].push_back(n);
        });
    for (std::thread &th : threads)
        th.join();
    Tally all;
    std::size_t n = 0;
    for (const auto &v : got) {
        for (Node *node : v) {
            CHECK(persistent_space_of(node) == space.get());
            all.add(node);
        }
        n += v.size();
    }
    CHECK_EQ(all.bad, 0);
    CHECK_EQ(all.wrong_counts(), 0);
    CHECK_EQ(n, std::size_t(n_threads) * per_thread);
    CHECK(!st->head.load());
    for (const auto &v : got)
        for (Node *node : v)
            space.free(node);
    CHECK_EQ(space.destroy_root<Stack>(stack_tag), 0);
    persistent_stats stats;
    REQUIRE(persistent_stats_get(space.get(), &stats) == 0);
    CHECK_EQ(stats.live_blocks, 0);
    return pmt::done();
}

} // namespace

int main(int argc, char **argv)
{
    if (argc == 3 && std::strcmp(argv[1], "build") == 0)
        return build(argv[2]);
    if (argc == 3 && std::strcmp(argv[1], "drain") == 0)
        return drain(argv[2]);
    const std::string path = pmt::path("atomic");
    CHECK_EQ(pmt::run_self({"build", path}), 0);
    CHECK_EQ(pmt::run_self({"drain", path}), 0);
    return pmt::done();
}

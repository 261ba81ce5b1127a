/* Space (the RAII handle) and its errors, PersistentSpace stored in a space,
 * the typed calls (alloc, arrays, free running destructors, roots,
 * restore), and find_or_construct_root: 8 racing constructors and a reader,
 * a throwing constructor, a process killed in the middle of construction, a
 * read-only opener. */
#include <persistent_allocator.hpp>
#include <persistent_space.hpp>
#include <persistent_tx.hpp>

#include <atomic>
#include <csignal>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cpp_test.hpp"

using namespace persistent_mem;

namespace {

std::uint64_t live_blocks(allocator_space_t *s)
{
    persistent_stats st;
    REQUIRE(persistent_stats_get(s, &st) == 0);
    return st.live_blocks;
}

/* ------------------------------------------------------------------------ */
/* Space                                                                      */

void test_handle(const std::string &path)
{
    /* create, use, move, close */
    Space a(path, 1u << 20);
    CHECK(static_cast<bool>(a));
    allocator_space_t *raw = a.get();
    CHECK(raw != nullptr);
    CHECK(a.unwrap() == raw);
    CHECK(a.info().capacity >= (1u << 20));
    a.sync();

    Space b(std::move(a));
    CHECK(!a);
    CHECK(b.get() == raw);
    Space c;
    CHECK(!c);
    c = std::move(b);
    CHECK(c.get() == raw);
    CHECK(!b);

    /* a second writer is refused, as an exception and as an error code */
    bool threw = false;
    try {
        Space again(path, persistent_options{});
    } catch (const SpaceError &e) {
        threw = true;
        CHECK_EQ(e.code().value(), PERSISTENT_E_BUSY);
        CHECK(e.code() == std::errc::device_or_resource_busy);
        CHECK(&e.code().category() == &error_category());
        CHECK(std::strstr(e.what(), path.c_str()) != nullptr);
    }
    CHECK(threw);
    std::error_code ec;
    Space none = Space::open(path, Space::open_options(), ec);
    CHECK(!none);
    CHECK(ec == std::errc::device_or_resource_busy);

    /* read-only beside the writer is fine */
    Space ro = Space::open(path, Space::open_options(PERSISTENT_OPEN_READONLY), ec);
    CHECK(!ec);
    CHECK(static_cast<bool>(ro));
    ro.close();
    CHECK(!ro);

    /* release and adopt */
    allocator_space_t *released = c.release();
    CHECK(!c);
    Space adopted(released);
    CHECK(adopted.get() == raw);
    adopted.close(ec);
    CHECK(!ec);
    CHECK(!adopted);
    adopted.close(); /* closing an empty handle does nothing */

    /* reopening works after the close */
    {
        Space d(path, Space::open_options());
        CHECK(static_cast<bool>(d));
    }

    /* a missing file, and a file that is not a space */
    Space missing = Space::open(path + ".missing", Space::open_options(), ec);
    CHECK(!missing);
    CHECK(ec == std::errc::no_such_file_or_directory);
    const std::string junk = pmt::path("junk");
    FILE *f = std::fopen(junk.c_str(), "w");
    REQUIRE(f != nullptr);
    for (int i = 0; i < 8192; i++)
        std::fputc('x', f);
    std::fclose(f);
    threw = false;
    try {
        Space j(junk, 1u << 20);
    } catch (const SpaceError &e) {
        threw = true;
        CHECK_EQ(e.code().value(), PERSISTENT_E_NOT_SPACE);
        CHECK(e.code().message() == persistent_strerror(PERSISTENT_E_NOT_SPACE));
    }
    CHECK(threw);
}

/* ------------------------------------------------------------------------ */
/* Typed calls                                                                */

std::atomic<int> n_ctor{0}, n_dtor{0};

struct Counted {
    std::uint64_t a = 11;
    std::uint64_t b;
    Counted() : b(22) { n_ctor++; }
    explicit Counted(std::uint64_t x, std::uint64_t y = 5) : a(x), b(y) { n_ctor++; }
    Counted(const Counted &) = delete;
    ~Counted() { n_dtor++; }
};

struct Plain {
    std::uint64_t x;
    std::uint64_t pad[3];
    Plain() : x(4), pad{} {}
};

struct Throws {
    explicit Throws(int) { throw std::runtime_error("no"); }
};

struct Holder {
    PersistentSpace space;
    PersistentPtr<Counted> item;
};

struct alignas(64) Wide {
    char bytes[64];
};

void test_typed(allocator_space_t *s)
{
    PersistentSpace ps(s);
    CHECK(static_cast<bool>(ps));
    CHECK(ps.unwrap() == s);
    CHECK(!PersistentSpace());
    CHECK(!PersistentSpace(nullptr));
    CHECK(PersistentSpace(s) == ps);
    const std::uint64_t blocks0 = live_blocks(s);

    /* alloc<T>(args...) constructs; free runs the destructor */
    n_ctor = n_dtor = 0;
    Counted *c = ps.alloc<Counted>(7u, 8u);
    REQUIRE(c != nullptr);
    CHECK(persistent_space_of(c) == s);
    CHECK_EQ(c->a, 7);
    CHECK_EQ(c->b, 8);
    Counted *d = ps.alloc<Counted>();
    REQUIRE(d != nullptr);
    CHECK_EQ(d->a, 11);
    CHECK_EQ(d->b, 22);
    CHECK_EQ(n_ctor.load(), 2);
    ps.free(c);
    ps.free(d);
    ps.free<Counted>(nullptr);
    CHECK_EQ(n_dtor.load(), 2);
    CHECK_EQ(live_blocks(s), blocks0);

    /* the seed's alloc<T>(n): a std::size_t means an array, another integer
     * type one T built from it when T can be */
    int *one = ps.alloc<int>(8);
    REQUIRE(one != nullptr);
    CHECK_EQ(*one, 8);
    CHECK(persistent_usable_size(s, one) < 8 * sizeof(int));
    ps.free(one);
    const char *text = "a string that needs a buffer of its own";
    char *buf = ps.alloc<char>(std::strlen(text) + 1);
    REQUIRE(buf != nullptr);
    CHECK(persistent_usable_size(s, buf) >= std::strlen(text) + 1);
    std::memcpy(buf, text, std::strlen(text) + 1);
    CHECK(std::strcmp(buf, text) == 0);
    ps.free_array(buf, std::strlen(text) + 1);
    Plain *three = ps.alloc<Plain>(3); /* not buildable from an int: array */
    REQUIRE(three != nullptr);
    CHECK(persistent_usable_size(s, three) >= 3 * sizeof(Plain));
    CHECK_EQ(three[2].x, 4);
    ps.free_array(three, 3);
    Counted *single = ps.alloc<Counted>(3); /* buildable from an int: one */
    REQUIRE(single != nullptr);
    CHECK_EQ(single->a, 3);
    ps.free(single);

    /* arrays: alloc_array, alloc<T[]>, and the seed's alloc<T>(count) for a
     * T that cannot be built from an integer; elements value-initialised,
     * free_array runs every destructor */
    n_ctor = n_dtor = 0;
    Counted *arr = ps.alloc_array<Counted>(5);
    REQUIRE(arr != nullptr);
    CHECK_EQ(n_ctor.load(), 5);
    CHECK_EQ(arr[4].b, 22);
    ps.free_array(arr, 5);
    CHECK_EQ(n_dtor.load(), 5);
    int *ints = ps.alloc<int[]>(1000);
    REQUIRE(ints != nullptr);
    CHECK(persistent_usable_size(s, ints) >= 1000 * sizeof(int));
    bool zero = true;
    for (int i = 0; i < 1000; i++)
        zero = zero && ints[i] == 0;
    CHECK(zero);
    ps.free_array(ints, 1000);
    auto *strs = ps.alloc<PersistentPtr<char>>(std::size_t(6));
    REQUIRE(strs != nullptr);
    CHECK(persistent_usable_size(s, strs) >= 6 * sizeof(PersistentPtr<char>));
    for (int i = 0; i < 6; i++)
        CHECK(!strs[i]);
    ps.free_array(strs, 6);
    errno = 0;
    CHECK(ps.alloc_array<int>(0) == nullptr);
    CHECK_EQ(errno, EINVAL);
    errno = 0;
    CHECK(ps.alloc_array<Counted>(std::size_t(-1) / 2) == nullptr);
    CHECK_EQ(errno, ENOMEM);

    /* over-aligned types */
    Wide *w = ps.alloc<Wide>();
    REQUIRE(w != nullptr);
    CHECK_EQ(pmt::addr(w) % 64, 0);
    Wide *ws = ps.alloc_array<Wide>(3);
    REQUIRE(ws != nullptr);
    CHECK_EQ(pmt::addr(ws) % 64, 0);
    ps.free(w);
    ps.free_array(ws, 3);

    /* a throwing constructor leaves no block behind */
    bool threw = false;
    try {
        ps.alloc<Throws>(1);
    } catch (const std::runtime_error &) {
        threw = true;
    }
    CHECK(threw);
    CHECK_EQ(live_blocks(s), blocks0);

    /* without a space: nullptr and EINVAL */
    PersistentSpace nothing;
    errno = 0;
    CHECK(nothing.alloc<Counted>() == nullptr);
    CHECK_EQ(errno, EINVAL);
    CHECK(nothing.find_root<Counted>(1) == nullptr);

    /* alloc_root / find_root / destroy_root */
    n_ctor = n_dtor = 0;
    const std::uint64_t tag = 0x616c6c6f63726f6full;
    Counted *r = ps.alloc_root<Counted>(tag, 3u);
    REQUIRE(r != nullptr);
    CHECK_EQ(r->a, 3);
    CHECK_EQ(r->b, 5);
    CHECK(ps.find_root<Counted>(tag) == r);
    errno = 0;
    CHECK(ps.alloc_root<Counted>(tag, 4u) == nullptr);
    CHECK_EQ(errno, EEXIST);
    /* the tag names a root too small to be a find_or_construct T */
    struct Big {
        char x[256];
    };
    errno = 0;
    CHECK(ps.find_or_construct_root<Big>(tag) == nullptr);
    CHECK_EQ(errno, EEXIST);
    CHECK_EQ(ps.destroy_root<Counted>(tag), 0);
    CHECK_EQ(n_dtor.load(), 1);
    CHECK(ps.find_root<Counted>(tag) == nullptr);
    CHECK_EQ(ps.destroy_root<Counted>(tag), -ENOENT);

    /* a PersistentSpace stored in the space, copied around */
    Holder *h = ps.alloc<Holder>();
    REQUIRE(h != nullptr);
    CHECK(!h->space);
    h->space = s;
    CHECK(h->space.unwrap() == s);
    h->item = h->space.alloc<Counted>(9u);
    CHECK_EQ(h->item->a, 9);
    PersistentSpace on_stack(h->space);
    CHECK(on_stack.unwrap() == s);
    void *copy = persistent_malloc(s, sizeof(Holder));
    REQUIRE(copy != nullptr);
    std::memcpy(copy, static_cast<const void *>(h), sizeof(Holder));
    CHECK(static_cast<Holder *>(copy)->space.unwrap() == s);
    CHECK(static_cast<Holder *>(copy)->item.get() == h->item.get());
    persistent_free(s, copy);
    h->space.free(h->item.get());
    h->space = nullptr;
    CHECK(!h->space);
    ps.free(h);
    CHECK_EQ(live_blocks(s), blocks0);
}

/* ------------------------------------------------------------------------ */
/* Frees the library would refuse: asked before ~T where they can be         */

int hook_calls = 0;
int hook_code = 0;
void count_hook(allocator_space_t *, int code, const void *, const char *, void *)
{
    hook_calls++;
    hook_code = code;
}

struct PolyBase1 {
    virtual ~PolyBase1() = default;
    long a = 1;
};
struct PolyBase2 {
    virtual ~PolyBase2() = default;
    long b = 2;
};
struct PolyDerived : PolyBase1, PolyBase2 {
    long c = 3;
    ~PolyDerived() override { n_dtor++; }
};

struct Owner {
    std::uint64_t version;
    std::vector<long, PersistentAllocator<long>> v;
};

void test_refused(allocator_space_t *s)
{
    PersistentSpace ps(s);
    persistent_error_hook_set(count_hook, nullptr);

    /* not a live block: reported, not destroyed */
    n_dtor = 0;
    Counted *c = ps.alloc<Counted>();
    REQUIRE(c != nullptr);
    ps.free(c);
    CHECK_EQ(n_dtor.load(), 1);
    CHECK_EQ(hook_calls, 0);
    ps.free(c); /* freed already */
    CHECK_EQ(n_dtor.load(), 1);
    CHECK_EQ(hook_calls, 1);
    Counted *two = ps.alloc_array<Counted>(2);
    REQUIRE(two != nullptr);
    n_dtor = 0;
    ps.free(two + 1); /* inside a block */
    ps.free_array(two + 1, 1);
    CHECK_EQ(n_dtor.load(), 0);
    CHECK_EQ(hook_calls, 3);
    ps.free_array(two, 2);
    CHECK_EQ(n_dtor.load(), 2);
    CHECK_EQ(hook_calls, 3);

    /* through a pointer to a second, polymorphic base: the whole object's
     * block, as delete would free it */
    const std::uint64_t blocks0 = live_blocks(s);
    n_dtor = 0;
    PolyBase2 *pb = ps.alloc<PolyDerived>();
    REQUIRE(pb != nullptr);
    CHECK(static_cast<void *>(pb) != static_cast<void *>(static_cast<PolyDerived *>(pb)));
    ps.free(pb);
    CHECK_EQ(n_dtor.load(), 1);
    CHECK_EQ(live_blocks(s), blocks0);
    const PolyBase2 *cpb = ps.alloc<PolyDerived>();
    REQUIRE(cpb != nullptr);
    ps.free(cpb);
    CHECK_EQ(n_dtor.load(), 2);
    CHECK_EQ(live_blocks(s), blocks0);
    CHECK_EQ(hook_calls, 3);

    /* a root's block, and blocks the caller's own transaction holds (a
     * snapshot in one, one it frees, one it allocated): refused before ~T
     * (persistent_free_check), reported once each, the blocks whole */
    n_dtor = 0;
    Counted *rootc = static_cast<Counted *>(persistent_malloc_root(s, 0x726f6f74ull, sizeof(Counted)));
    REQUIRE(rootc != nullptr);
    rootc->a = 41;
    const int calls0 = hook_calls;
    hook_calls = 0;
    ps.free(rootc);
    CHECK_EQ(n_dtor.load(), 0);
    CHECK_EQ(hook_calls, 1);
    CHECK_EQ(hook_code, PERSISTENT_E_ROOT_BLOCK);
    CHECK(persistent_find_root(s, 0x726f6f74ull) == rootc);
    CHECK_EQ(rootc->a, 41u);
    CHECK_EQ(persistent_root_remove(s, 0x726f6f74ull), 0);
    Counted *held = ps.alloc<Counted>(7u);
    Counted *arr = ps.alloc_array<Counted>(3);
    Counted *gone = ps.alloc<Counted>(9u);
    REQUIRE(held != nullptr && arr != nullptr && gone != nullptr);
    Counted *fresh = nullptr;
    {
        Transaction tx(s);
        tx_add(s, held->a);
        held->a = 8;
        tx_add(s, arr[1].a);
        REQUIRE(persistent_tx_free(s, gone) == 0);
        fresh = static_cast<Counted *>(persistent_tx_alloc(s, sizeof(Counted)));
        REQUIRE(fresh != nullptr);
        CHECK_EQ(persistent_free_check(s, held), PERSISTENT_E_TX_BLOCK);
        CHECK_EQ(persistent_free_check(s, gone), PERSISTENT_E_TX_BLOCK);
        CHECK_EQ(persistent_free_check(s, fresh), PERSISTENT_E_TX_BLOCK);
        n_dtor = 0;
        ps.free(held);
        ps.free_array(arr, 3);
        ps.free(gone);
        ps.free(fresh);
        CHECK_EQ(n_dtor.load(), 0);
        CHECK_EQ(hook_calls, 5);
        CHECK_EQ(hook_code, PERSISTENT_E_TX_BLOCK);
        tx.commit();
    }
    CHECK_EQ(held->a, 8u);
    CHECK_EQ(arr[2].a, 11u);
    CHECK_EQ(persistent_free_check(s, held), 0);
    ps.free(held);
    ps.free_array(arr, 3);
    CHECK_EQ(n_dtor.load(), 4);
    CHECK_EQ(hook_calls, 5);
    CHECK_EQ(persistent_free_check(s, gone), PERSISTENT_E_DOUBLE_FREE);   /* freed at commit */
    persistent_free(s, fresh);
    CHECK_EQ(hook_calls, 5);
    hook_calls = calls0;

    /* destroy_root inside the caller's transaction, which holds the root
     * (a snapshot in it): -EBUSY before ~T, the root whole */
    const std::uint64_t tag = 0x62757379ull;
    Owner *o = ps.find_or_construct_root<Owner>(tag);
    REQUIRE(o != nullptr);
    for (long i = 0; i < 100; i++)
        o->v.push_back(i);
    {
        Transaction tx(s);
        tx_add(s, o->version);
        o->version++;
        CHECK_EQ(ps.destroy_root<Owner>(tag), -EBUSY);
        tx.commit();
    }
    CHECK(ps.find_root<Owner>(tag) == o);
    CHECK_EQ(o->version, 1);
    CHECK_EQ(o->v.size(), 100);
    CHECK(persistent_usable_size(s, o->v.data()) >= 100 * sizeof(long));
    CHECK_EQ(o->v[99], 99);
    CHECK_EQ(hook_calls, 3);
    /* and in one that does not hold it: still refused, nothing is known */
    {
        Transaction tx(s);
        CHECK_EQ(ps.destroy_root<Owner>(tag), -EBUSY);
    }
    CHECK_EQ(o->v.size(), 100);
    CHECK_EQ(ps.destroy_root<Owner>(tag), 0);
    CHECK(ps.find_root<Owner>(tag) == nullptr);
    CHECK_EQ(hook_calls, 3);
    persistent_error_hook_set(nullptr, nullptr);
}

/* ------------------------------------------------------------------------ */
/* find_or_construct_root                                                     */

constexpr std::uint64_t race_tag = 0x72616365726f6f74ull;
constexpr std::uint64_t crash_tag = 0x637261736821ull;
constexpr std::uint64_t throw_tag = 0x7468726f77ull;
constexpr std::uint64_t ro_tag = 0x726561646f6e6c79ull;

std::atomic<int> slow_ctors{0};
std::atomic<int> slow_dtors{0};

struct Slow {
    std::uint64_t first;
    std::uint64_t words[64];
    std::uint64_t last;
    explicit Slow(std::uint64_t seed)
    {
        slow_ctors++;
        first = seed;
        /* give the other threads time to arrive while this is half-built */
        for (int i = 0; i < 64; i++) {
            words[i] = seed + static_cast<std::uint64_t>(i);
            if (i % 16 == 0)
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        last = seed ^ 0xffff;
    }
    ~Slow() { slow_dtors++; }
};

bool complete(const Slow *p, std::uint64_t seed)
{
    if (p->first != seed || p->last != (seed ^ 0xffff))
        return false;
    for (int i = 0; i < 64; i++)
        if (p->words[i] != seed + static_cast<std::uint64_t>(i))
            return false;
    return true;
}

void test_race(allocator_space_t *s)
{
    PersistentSpace ps(s);
    slow_ctors = 0;
    slow_dtors = 0;
    const std::uint64_t blocks0 = live_blocks(s);
    constexpr int n = 8;
    std::vector<Slow *> got(n, nullptr);
    std::vector<int> whole(n, 0);
    std::atomic<int> ready{0};
    std::atomic<bool> finished{false};
    std::atomic<int> seen_half{0}, seen_whole{0};
    std::vector<std::thread> threads;
    /* a reader looking the root up meanwhile never finds it half-built */
    threads.emplace_back([&] {
        ready++;
        while (!finished.load()) {
            const Slow *p = ps.find_root<Slow>(race_tag);
            if (p != nullptr)
                (complete(p, p->first) ? seen_whole : seen_half)++;
            std::this_thread::yield();
        }
    });
    for (int t = 0; t < n; t++)
        threads.emplace_back([&, t] {
            ready++;
            while (ready.load() < n + 1)
                std::this_thread::yield();
            /* each thread offers its own seed; one T is published */
            Slow *p = ps.find_or_construct_root<Slow>(race_tag, std::uint64_t(1000 + t));
            got[static_cast<std::size_t>(t)] = p;
            whole[static_cast<std::size_t>(t)] = p && complete(p, p->first);
        });
    for (std::size_t t = 1; t < threads.size(); t++)
        threads[t].join();
    /* at least one look after publication */
    while (seen_whole.load() == 0)
        std::this_thread::yield();
    finished = true;
    threads[0].join();
    CHECK_EQ(seen_half.load(), 0);
    CHECK(slow_ctors.load() >= 1);
    /* every T that lost was destroyed: one survives */
    CHECK_EQ(slow_ctors.load() - slow_dtors.load(), 1);
    for (int t = 0; t < n; t++) {
        CHECK(got[static_cast<std::size_t>(t)] == got[0]);
        CHECK(whole[static_cast<std::size_t>(t)]); /* nobody saw it half-built */
    }
    REQUIRE(got[0] != nullptr);
    const std::uint64_t seed = got[0]->first;
    CHECK(seed >= 1000 && seed < 1000 + n);
    /* the losers' blocks were freed: only the root's remains */
    CHECK_EQ(live_blocks(s), blocks0 + 1);
    /* later calls find it and construct nothing */
    const int ctors = slow_ctors.load();
    CHECK(ps.find_or_construct_root<Slow>(race_tag, std::uint64_t(1)) == got[0]);
    CHECK(ps.find_root<Slow>(race_tag) == got[0]);
    CHECK_EQ(slow_ctors.load(), ctors);
    CHECK(complete(got[0], seed));

    /* a constructor that throws: nothing is published or left allocated,
     * the next call constructs */
    struct Picky {
        int v;
        explicit Picky(int x) : v(x)
        {
            if (x < 0)
                throw std::invalid_argument("negative");
        }
    };
    const std::uint64_t blocks1 = live_blocks(s);
    bool threw = false;
    try {
        ps.find_or_construct_root<Picky>(throw_tag, -1);
    } catch (const std::invalid_argument &) {
        threw = true;
    }
    CHECK(threw);
    CHECK(ps.find_root<Picky>(throw_tag) == nullptr);
    CHECK_EQ(live_blocks(s), blocks1);
    Picky *pk = ps.find_or_construct_root<Picky>(throw_tag, 5);
    REQUIRE(pk != nullptr);
    CHECK_EQ(pk->v, 5);
    CHECK(ps.find_root<Picky>(throw_tag) == pk);
}

/* A constructor that gets its process killed half-way. */
struct Fragile {
    std::uint64_t a, b, c;
    explicit Fragile(bool die) : a(1), b(2), c(3)
    {
        if (die) {
            a = 0xdead;
            std::raise(SIGKILL);
        }
    }
};

int crash_child(const std::string &path)
{
    Space sp(path, 0);
    sp.find_or_construct_root<Fragile>(crash_tag, true);
    return 3; /* not reached */
}

void test_crash(const std::string &path)
{
    {
        Space sp(path, 1u << 20);
    }
    CHECK_EQ(pmt::run_self({"crash", path}), 128 + SIGKILL);
    Space sp(path, 0);
    /* the half-built object was never published */
    CHECK(sp.find_root<Fragile>(crash_tag) == nullptr);
    persistent_check_report rep;
    CHECK_EQ(persistent_check(sp.get(), &rep), 0);
    Fragile *f = sp.find_or_construct_root<Fragile>(crash_tag, false);
    REQUIRE(f != nullptr);
    CHECK_EQ(f->a, 1);
    CHECK_EQ(f->b, 2);
    CHECK_EQ(f->c, 3);
    CHECK(sp.find_root<Fragile>(crash_tag) == f);
}

/* A read-only opener never writes, so it cannot construct; it finds what
 * is there. */
struct RoRefs {
    PersistentPtr<Counted> one;
    PersistentPtr<Counted> three;
};

void test_readonly(const std::string &path)
{
    {
        Space sp(path, 1u << 20);
        CHECK(sp.find_or_construct_root<std::uint64_t>(ro_tag + 1, 77u) != nullptr);
        CHECK(sp.find_or_construct_root<Counted>(ro_tag + 3) != nullptr);
        RoRefs *refs = sp.find_or_construct_root<RoRefs>(ro_tag + 4);
        REQUIRE(refs != nullptr);
        refs->one = sp.alloc<Counted>(41u, 42u);
        refs->three = sp.alloc_array<Counted>(3);
        REQUIRE(refs->one != nullptr && refs->three != nullptr);
    }
    Space ro(path, Space::open_options(PERSISTENT_OPEN_READONLY));
    errno = 0;
    CHECK(ro.find_or_construct_root<Counted>(ro_tag + 2) == nullptr); /* no such root */
    CHECK_EQ(errno, EROFS);
    std::uint64_t *done = ro.find_or_construct_root<std::uint64_t>(ro_tag + 1, 1u);
    REQUIRE(done != nullptr);
    CHECK_EQ(*done, 77);
    /* nothing is freed read-only: destroy_root refuses before ~T */
    n_dtor = 0;
    CHECK_EQ(ro.destroy_root<Counted>(ro_tag + 3), -EROFS);
    CHECK_EQ(n_dtor.load(), 0);
    CHECK(ro.find_root<Counted>(ro_tag + 3) != nullptr);

    /* nor by free and free_array: refused before ~T, and the library's
     * refusal reported to the error hook; through Space (which knows its
     * mode from the open) and through PersistentSpace (which asks) */
    RoRefs *refs = ro.find_root<RoRefs>(ro_tag + 4);
    REQUIRE(refs != nullptr);
    Counted *one = refs->one.get();
    Counted *three = refs->three.get();
    REQUIRE(one != nullptr && three != nullptr);
    const std::uint64_t blocks = live_blocks(ro.get());
    persistent_error_hook_set(count_hook, nullptr);
    hook_calls = 0;
    hook_code = 0;
    n_dtor = 0;
    ro.free(one);
    CHECK_EQ(n_dtor.load(), 0);
    CHECK_EQ(hook_calls, 1);
    CHECK_EQ(hook_code, PERSISTENT_E_BAD_POINTER);
    ro.free_array(three, 3);
    CHECK_EQ(n_dtor.load(), 0);
    CHECK_EQ(hook_calls, 2);
    PersistentSpace ps(ro.get());
    ps.free(one);
    ps.free_array(three, 3);
    CHECK_EQ(n_dtor.load(), 0);
    CHECK_EQ(hook_calls, 4);
    CHECK_EQ(live_blocks(ro.get()), blocks);
    CHECK(persistent_usable_size(ro.get(), one) >= sizeof(Counted));
    persistent_error_hook_set(nullptr, nullptr);
    ro.close();

    /* a private view without recovery cannot free either (its pages are
     * writable, copy-on-write) */
    {
        Space priv(path, Space::open_options(PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER));
        RoRefs *r = priv.find_root<RoRefs>(ro_tag + 4);
        REQUIRE(r != nullptr);
        persistent_error_hook_set(count_hook, nullptr);
        hook_calls = 0;
        priv.free(r->one.get());
        PersistentSpace(priv.get()).free_array(r->three.get(), 3);
        CHECK_EQ(n_dtor.load(), 0);
        CHECK_EQ(hook_calls, 2);
        persistent_error_hook_set(nullptr, nullptr);
    }

    /* a space adopted from the C API: its mode is asked at the adoption */
    {
        allocator_space_t *raw = nullptr;
        const persistent_options o = Space::open_options(PERSISTENT_OPEN_READONLY);
        REQUIRE(persistent_space_open(path.c_str(), &o, &raw) == 0);
        Space adopted(raw);
        RoRefs *r = adopted.find_root<RoRefs>(ro_tag + 4);
        REQUIRE(r != nullptr);
        persistent_error_hook_set(count_hook, nullptr);
        hook_calls = 0;
        adopted.free(r->one.get());
        adopted.free_array(r->three.get(), 3);
        CHECK_EQ(n_dtor.load(), 0);
        CHECK_EQ(hook_calls, 2);
        persistent_error_hook_set(nullptr, nullptr);
    }

    /* the objects are whole: a writer frees them, destructors and all */
    Space sp(path, 0);
    RoRefs *w = sp.find_root<RoRefs>(ro_tag + 4);
    REQUIRE(w != nullptr);
    CHECK_EQ(w->one->a, 41);
    CHECK_EQ(w->one->b, 42);
    CHECK_EQ(w->three.get()[2].b, 22);
    const std::uint64_t before = live_blocks(sp.get());
    sp.free(w->one.get());
    sp.free_array(w->three.get(), 3);
    CHECK_EQ(n_dtor.load(), 4);
    CHECK_EQ(live_blocks(sp.get()), before - 2);
    /* and so does a writer's space adopted, or moved */
    Space adopted(sp.release());
    adopted.free(adopted.alloc<Counted>());
    CHECK_EQ(n_dtor.load(), 5);
    Space moved(std::move(adopted));
    moved.free_array(moved.alloc_array<Counted>(2), 2);
    CHECK_EQ(n_dtor.load(), 7);
    CHECK_EQ(live_blocks(moved.get()), before - 2);
}

} // namespace

int main(int argc, char **argv)
{
    if (argc == 3 && std::strcmp(argv[1], "crash") == 0)
        return crash_child(argv[2]);

    test_handle(pmt::path("handle"));
    {
        Space sp(pmt::path("typed"), 8u << 20);
        test_typed(sp.get());
        test_refused(sp.get());
        test_race(sp.get());
        persistent_check_report rep;
        CHECK_EQ(persistent_check(sp.get(), &rep), 0);
    }
    test_crash(pmt::path("crash"));
    test_readonly(pmt::path("readonly"));
    return pmt::done();
}

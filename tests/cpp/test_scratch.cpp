/* Space::scratch: a scratch space in memory (PERSISTENT_OPEN_SCRATCH with
 * no path) through the C++ handle: objects, arrays, roots, a container,
 * growth, a transaction, moves, the error-code twin, and its memfd gone at
 * close; and Space(dir, scratch_options) for an unnamed file in a
 * directory. */
#include <persistent_allocator.hpp>
#include <persistent_space.hpp>
#include <persistent_tx.hpp>

#include <dirent.h>

#include <vector>

#include "cpp_test.hpp"

using namespace persistent_mem;

namespace {

const char memfd_name[] = "memfd:persistent_mem scratch";

/* descriptors of this process whose target names what */
int open_fds(const std::string &what)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == nullptr)
        return -1;
    int n = 0;
    while (struct dirent *e = readdir(d)) {
        char link[300], target[4096];
        std::snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (std::strstr(target, what.c_str()) != nullptr)
            n++;
    }
    closedir(d);
    return n;
}

int entries_in(const std::string &dir)
{
    DIR *d = opendir(dir.c_str());
    REQUIRE(d != nullptr);
    int n = 0;
    while (struct dirent *e = readdir(d))
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

int n_ctor = 0, n_dtor = 0;

struct Counted {
    std::uint64_t a;
    std::uint64_t b = 22;
    explicit Counted(std::uint64_t x = 11) : a(x) { n_ctor++; }
    ~Counted() { n_dtor++; }
};

struct Registry {
    std::uint64_t version = 1;
    std::vector<std::uint64_t, PersistentAllocator<std::uint64_t>> values;
};

constexpr std::uint64_t counted_tag = 0x5343524154434831ull;
constexpr std::uint64_t registry_tag = 0x5343524154434832ull;

std::uint64_t live_blocks(allocator_space_t *s)
{
    persistent_stats st;
    REQUIRE(persistent_stats_get(s, &st) == 0);
    return st.live_blocks;
}

/* what a writer's space does, on a scratch space */
void use(Space &sp)
{
    n_ctor = n_dtor = 0;
    const std::uint64_t blocks0 = live_blocks(sp.get());

    Counted *c = sp.alloc<Counted>(7u);
    REQUIRE(c != nullptr);
    CHECK_EQ(c->a, 7);
    CHECK_EQ(c->b, 22);
    Counted *arr = sp.alloc_array<Counted>(5);
    REQUIRE(arr != nullptr);
    CHECK_EQ(arr[4].a, 11);
    CHECK_EQ(n_ctor, 6);
    sp.free(c);
    sp.free_array(arr, 5);
    CHECK_EQ(n_dtor, 6);
    CHECK_EQ(live_blocks(sp.get()), blocks0);

    /* roots */
    Counted *r = sp.alloc_root<Counted>(counted_tag, 99u);
    REQUIRE(r != nullptr);
    CHECK(sp.find_root<Counted>(counted_tag) == r);
    CHECK(sp.find_or_construct_root<Counted>(counted_tag, 1u) == r);
    CHECK_EQ(r->a, 99);
    Registry *reg = sp.find_or_construct_root<Registry>(registry_tag);
    REQUIRE(reg != nullptr);
    CHECK(sp.find_root<Registry>(registry_tag) == reg);

    /* a container, grown past the space's first size */
    for (std::uint64_t i = 0; i < 300000; i++)
        reg->values.push_back(i);
    CHECK_EQ(reg->values.size(), 300000);
    CHECK_EQ(reg->values[299999], 299999);
    CHECK(sp.info().capacity > (1u << 20));

    /* a transaction, aborted and committed */
    {
        Transaction tx(sp.get());
        tx_add(sp.get(), reg->version);
        reg->version = 5;
        tx.abort();
    }
    CHECK_EQ(reg->version, 1);
    {
        Transaction tx(sp.get());
        tx_add(sp.get(), reg->version);
        reg->version = 2;
        tx.commit();
    }
    CHECK_EQ(reg->version, 2);

    /* through a PersistentSpace handle too */
    PersistentSpace ps(sp);
    Counted *d = ps.alloc<Counted>(3u);
    REQUIRE(d != nullptr);
    ps.free(d);
    CHECK_EQ(n_dtor, 7);

    /* the two roots and the vector's buffer go; the roots' table stays */
    const std::uint64_t blocks1 = live_blocks(sp.get());
    CHECK_EQ(sp.destroy_root<Counted>(counted_tag), 0);
    CHECK_EQ(n_dtor, 8);
    CHECK_EQ(sp.destroy_root<Registry>(registry_tag), 0);
    CHECK(sp.find_root<Counted>(counted_tag) == nullptr);
    CHECK(sp.find_root<Registry>(registry_tag) == nullptr);
    CHECK_EQ(live_blocks(sp.get()), blocks1 - 3);

    persistent_check_report rep;
    CHECK_EQ(persistent_check(sp.get(), &rep), 0);
}

void test_memory()
{
    const int before = open_fds(memfd_name);
    {
        Space sp = Space::scratch(1u << 20, 64u << 20);
        REQUIRE(static_cast<bool>(sp));
        CHECK_EQ(open_fds(memfd_name), before + 1);
        const persistent_info in = sp.info();
        CHECK(in.open_flags & PERSISTENT_OPEN_SCRATCH);
        CHECK_EQ(in.growable, 1);
        use(sp);

        /* moved, it is the same space, still freeing */
        allocator_space_t *raw = sp.get();
        Space moved(std::move(sp));
        CHECK(!sp);
        CHECK(moved.get() == raw);
        n_dtor = 0;
        moved.free(moved.alloc<Counted>());
        CHECK_EQ(n_dtor, 1);
        Space assigned;
        assigned = std::move(moved);
        CHECK(assigned.get() == raw);
        n_dtor = 0;
        assigned.free_array(assigned.alloc_array<Counted>(2), 2);
        CHECK_EQ(n_dtor, 2);

        assigned.close();
        CHECK(!assigned);
        CHECK_EQ(open_fds(memfd_name), before);
    }
    CHECK_EQ(open_fds(memfd_name), before);

    /* two at once are two spaces */
    {
        Space a = Space::scratch(256u << 10);
        Space b = Space::scratch(Space::scratch_options(256u << 10, 0, PERSISTENT_OPEN_LAZY));
        CHECK(a.get() != b.get());
        CHECK_EQ(open_fds(memfd_name), before + 2);
        CHECK(a.alloc_root<Counted>(counted_tag, 1u) != nullptr);
        CHECK(b.find_root<Counted>(counted_tag) == nullptr);
        CHECK_EQ(b.info().growable, 0);
    }
    CHECK_EQ(open_fds(memfd_name), before);

    /* refused: no size, a flag a scratch space does not take */
    std::error_code ec;
    Space none = Space::scratch(Space::scratch_options(0), ec);
    CHECK(!none);
    CHECK(ec == std::errc::invalid_argument);
    none = Space::scratch(Space::scratch_options(1u << 20, 0, PERSISTENT_OPEN_READONLY), ec);
    CHECK(!none);
    CHECK(ec == std::errc::invalid_argument);
    Space ok = Space::scratch(Space::open_options(), ec); /* the flag is added; no size */
    CHECK(!ok);
    CHECK(ec == std::errc::invalid_argument);
    bool threw = false;
    try {
        Space sp = Space::scratch(0);
    } catch (const SpaceError &e) {
        threw = true;
        CHECK(e.code() == std::errc::invalid_argument);
        CHECK(std::strstr(e.what(), "scratch") != nullptr);
    }
    CHECK(threw);
    CHECK_EQ(open_fds(memfd_name), before);
}

/* an unnamed file in a directory: the directory stays empty */
void test_directory()
{
    std::string tmpl = pmt::path("scratchdir");
    std::vector<char> dir(tmpl.begin(), tmpl.end());
    dir.push_back('\0');
    std::strcpy(dir.data() + tmpl.size() - 6, "XXXXXX");
    REQUIRE(mkdtemp(dir.data()) != nullptr);
    const std::string d(dir.data());
    {
        Space sp(d, Space::scratch_options(1u << 20, 64u << 20));
        CHECK_EQ(open_fds(d), 1);
        use(sp);
        CHECK_EQ(entries_in(d), 0);
    }
    CHECK_EQ(open_fds(d), 0);
    CHECK_EQ(entries_in(d), 0);
    rmdir(d.c_str());
}

} // namespace

int main()
{
    test_memory();
    test_directory();
    return pmt::done();
}

/* PersistentPtr: every operator, with the pointer objects on the stack and
 * inside the space; the fancy-pointer traits; blocks holding pointers
 * copied with memcpy and moved by persistent_realloc; a remap within the
 * process; pointers between two spaces. */
#include <persistent_allocator.hpp>
#include <persistent_ptr.hpp>
#include <persistent_space.hpp>

#include <algorithm>
#include <iterator>
#include <memory>
#include <new>
#include <numeric>
#include <type_traits>
#include <vector>

#include "cpp_test.hpp"

using namespace persistent_mem;

namespace {

struct Item {
    std::uint64_t a, b, c; /* 24 bytes: arithmetic must scale by it */
};

/* ------------------------------------------------------------------------ */
/* Compile-time properties                                                    */

using PI = PersistentPtr<int>;
static_assert(sizeof(PI) == 8, "");
static_assert(sizeof(AtomicPersistentPtr<Item>) == 8, "");
static_assert(sizeof(PersistentSpace) == 8, "");
static_assert(sizeof(PersistentAllocator<Item>) == 8, "");
static_assert(AtomicPersistentPtr<Item>::is_always_lock_free, "");
static_assert(std::is_same<PersistentPtr<Item>::atomic, AtomicPersistentPtr<Item>>::value, "");

/* pointer_traits */
static_assert(std::is_same<std::pointer_traits<PI>::element_type, int>::value, "");
static_assert(std::is_same<std::pointer_traits<PI>::difference_type, std::ptrdiff_t>::value, "");
static_assert(std::is_same<std::pointer_traits<PI>::rebind<long>, PersistentPtr<long>>::value, "");
static_assert(std::is_same<std::pointer_traits<PersistentPtr<void>>::rebind<Item>,
                           PersistentPtr<Item>>::value, "");

/* allocator_traits */
using AT = std::allocator_traits<PersistentAllocator<int>>;
static_assert(std::is_same<AT::pointer, PI>::value, "");
static_assert(std::is_same<AT::const_pointer, PersistentPtr<const int>>::value, "");
static_assert(std::is_same<AT::void_pointer, PersistentPtr<void>>::value, "");
static_assert(std::is_same<AT::const_void_pointer, PersistentPtr<const void>>::value, "");
static_assert(std::is_same<AT::rebind_alloc<Item>, PersistentAllocator<Item>>::value, "");
static_assert(std::is_same<AT::rebind_traits<Item>::pointer, PersistentPtr<Item>>::value, "");
static_assert(AT::propagate_on_container_move_assignment::value, "");
static_assert(!AT::is_always_equal::value, "");

/* conversions between pointer types */
static_assert(std::is_convertible<PI, PersistentPtr<const int>>::value, "");
static_assert(std::is_convertible<PI, PersistentPtr<void>>::value, "");
static_assert(std::is_convertible<PI, PersistentPtr<const void>>::value, "");
static_assert(std::is_convertible<PersistentPtr<const int>, PersistentPtr<const void>>::value, "");
static_assert(!std::is_convertible<PersistentPtr<const int>, PI>::value, "");
static_assert(!std::is_convertible<PersistentPtr<void>, PI>::value, "");
static_assert(std::is_constructible<PI, PersistentPtr<void>>::value, "static_cast from void");
static_assert(!std::is_constructible<PI, PersistentPtr<const void>>::value, "no const cast");
static_assert(std::is_convertible<int *, PI>::value, "");
static_assert(std::is_convertible<std::nullptr_t, PI>::value, "");
static_assert(!std::is_convertible<PI, int *>::value, "no implicit raw pointer");
static_assert(std::is_convertible<PersistentPtr<char>, const char *>::value,
              "character pointers convert for std::basic_string");

/* contextually convertible to bool, but not implicitly */
static_assert(std::is_constructible<bool, PI>::value, "");
static_assert(!std::is_convertible<PI, bool>::value, "");

/* NullablePointer and random-access iterator */
static_assert(std::is_nothrow_default_constructible<PI>::value, "");
static_assert(std::is_nothrow_copy_constructible<PI>::value, "");
static_assert(std::is_nothrow_copy_assignable<PI>::value, "");
static_assert(std::is_same<std::iterator_traits<PI>::iterator_category,
                           std::random_access_iterator_tag>::value, "");
static_assert(std::is_same<std::iterator_traits<PI>::value_type, int>::value, "");
static_assert(std::is_same<std::iterator_traits<PI>::reference, int &>::value, "");
static_assert(std::is_same<std::iterator_traits<PI>::difference_type, std::ptrdiff_t>::value, "");
static_assert(std::is_same<std::iterator_traits<PersistentPtr<const int>>::value_type, int>::value,
              "");

/* ------------------------------------------------------------------------ */
/* Every operator                                                             */

/* The pointer objects under test; placed on the stack or inside the space. */
struct Ptrs {
    PersistentPtr<Item> p, q;
    PersistentPtr<const Item> c;
    PersistentPtr<void> v;
};

void exercise(Ptrs &P, Item *arr, allocator_space_t *s, bool in_space)
{
    for (std::uint64_t i = 0; i < 16; i++)
        arr[i] = Item{i, i * 10, i * 100};

    /* null */
    CHECK(!P.p);
    CHECK(P.p == nullptr);
    CHECK(nullptr == P.p);
    CHECK(!(P.p != nullptr));
    CHECK(P.p.get() == nullptr);
    CHECK(!P.p.is_offset_encoded());
    CHECK(P.p.get_data_offset() == 0);

    /* construction, get, get_space, the encoding chosen */
    P.p = arr;
    CHECK(P.p.get() == arr);
    CHECK(static_cast<bool>(P.p));
    CHECK(P.p != nullptr);
    CHECK(nullptr != P.p);
    CHECK(P.p.is_offset_encoded() == in_space);
    CHECK(P.p.get_space() == s);
    CHECK_EQ(P.p.get_data_offset(), pmt::addr(arr) - pmt::addr(s));
    bool taken = false;
    if (P.p) /* explicit bool in a condition */
        taken = true;
    CHECK(taken);

    /* dereference */
    CHECK_EQ((*P.p).a, 0);
    CHECK_EQ(P.p->b, 0);
    CHECK_EQ(P.p[3].c, 300);
    CHECK_EQ(P.p[std::size_t(4)].b, 40);
    CHECK_EQ(P.p[-0L].a, 0);
    P.p[5].a = 55;
    CHECK_EQ(arr[5].a, 55);
    arr[5].a = 5;

    /* + and - with integers, both orders, any integer type */
    P.q = P.p + 5;
    CHECK(P.q.get() == arr + 5);
    CHECK(P.q.is_offset_encoded() == in_space);
    P.q = 6 + P.p;
    CHECK(P.q.get() == arr + 6);
    P.q = P.q - 2;
    CHECK(P.q.get() == arr + 4);
    P.q = P.p + std::size_t(9);
    CHECK(P.q.get() == arr + 9);
    P.q = P.q - std::uint16_t(1);
    CHECK(P.q.get() == arr + 8);
    P.q = P.q + (-3);
    CHECK(P.q.get() == arr + 5);
    CHECK_EQ((P.p + 15)->c, 1500);

    /* signed difference */
    CHECK_EQ(P.q - P.p, 5);
    CHECK_EQ(P.p - P.q, -5);
    CHECK_EQ(P.p - P.p, 0);
    CHECK((P.q - P.p) > 0);
    CHECK((P.p - P.q) < 0);
    CHECK(P.q - 5 == P.p);
    CHECK_EQ(P.p + 16 - P.p, 16);

    /* ++ and --, prefix returns the pointer, postfix the old value */
    CHECK((++P.q).get() == arr + 6);
    CHECK(P.q.get() == arr + 6);
    CHECK((P.q++).get() == arr + 6);
    CHECK(P.q.get() == arr + 7);
    CHECK((--P.q).get() == arr + 6);
    CHECK((P.q--).get() == arr + 6);
    CHECK(P.q.get() == arr + 5);
    CHECK(&++P.q == &P.q);
    CHECK(&--P.q == &P.q);
    CHECK(P.q.is_offset_encoded() == in_space);

    /* += and -= */
    P.q += 4;
    CHECK(P.q.get() == arr + 9);
    P.q -= 7;
    CHECK(P.q.get() == arr + 2);
    P.q += -1;
    CHECK(P.q.get() == arr + 1);
    P.q -= -2;
    CHECK(P.q.get() == arr + 3);
    P.q += std::size_t(2);
    CHECK(P.q.get() == arr + 5);
    CHECK(&(P.q += 0) == &P.q);

    /* comparisons, same and mixed types, raw pointers */
    CHECK(P.p < P.q);
    CHECK(P.q > P.p);
    CHECK(P.p <= P.q);
    CHECK(P.q >= P.p);
    CHECK(P.p <= P.p);
    CHECK(P.p >= P.p);
    CHECK(!(P.q < P.p));
    CHECK(!(P.p > P.q));
    CHECK(P.p != P.q);
    CHECK(P.p == PersistentPtr<Item>(arr));
    CHECK(P.p == arr);
    CHECK(arr == P.p);
    CHECK(P.p != arr + 1);
    CHECK(P.p < arr + 1);
    CHECK(arr + 6 > P.q);
    P.c = P.p;
    CHECK(P.c == P.p);
    CHECK(P.p == P.c);
    CHECK(P.c < P.q);
    CHECK(P.q - P.c == 5);
    CHECK(P.c->c == 0);
    P.v = P.q;
    CHECK(P.v == P.q);
    CHECK(P.v.get() == static_cast<void *>(arr + 5));

    /* casts */
    CHECK(static_cast<PersistentPtr<Item>>(P.v) == P.q);
    CHECK(static_pointer_cast<Item>(P.v) == P.q);
    CHECK(const_pointer_cast<Item>(P.c) == P.p);
    CHECK(reinterpret_pointer_cast<char>(P.q).get() == reinterpret_cast<char *>(arr + 5));
    PersistentPtr<const void> cv = P.c;
    CHECK(cv == P.c);

    /* swap: member, ADL, and with a pointer that lives elsewhere */
    P.p.swap(P.q);
    CHECK(P.p.get() == arr + 5);
    CHECK(P.q.get() == arr);
    swap(P.p, P.q);
    CHECK(P.p.get() == arr);
    CHECK(P.q.get() == arr + 5);
    PersistentPtr<Item> local(arr + 7);
    CHECK(!local.is_offset_encoded());
    std::swap(P.p, local); /* generic std::swap: through copies */
    CHECK(P.p.get() == arr + 7);
    CHECK(local.get() == arr);
    swap(P.p, local);
    CHECK(P.p.get() == arr);
    CHECK(local.get() == arr + 7);
    CHECK(P.p.is_offset_encoded() == in_space);
    CHECK(!local.is_offset_encoded());

    /* make_persistent_ptr, to_address, pointer_to, hash */
    P.q = make_persistent_ptr(arr + 2, s);
    CHECK(P.q.get() == arr + 2);
    CHECK(to_address(P.q) == arr + 2);
    CHECK(std::pointer_traits<PersistentPtr<Item>>::pointer_to(arr[6]).get() == arr + 6);
    CHECK(std::pointer_traits<PersistentPtr<const Item>>::pointer_to(arr[6]).get() == arr + 6);
    CHECK(std::hash<PersistentPtr<Item>>()(P.q) == std::hash<PersistentPtr<Item>>()(arr + 2));

    /* as random-access iterators */
    CHECK_EQ(std::distance(P.p, P.p + 16), 16);
    P.q = P.p + 16;
    std::reverse(P.p, P.q);
    CHECK_EQ(arr[0].a, 15);
    std::sort(P.p, P.q, [](const Item &x, const Item &y) { return x.a < y.a; });
    bool sorted = true;
    for (std::uint64_t i = 0; i < 16; i++)
        sorted = sorted && arr[i].a == i && arr[i].c == i * 100;
    CHECK(sorted);
    auto it = std::find_if(P.p, P.q, [](const Item &x) { return x.b == 70; });
    CHECK(it - P.p == 7);
    std::uint64_t sum = 0;
    for (PersistentPtr<Item> i = P.p; i != P.q; ++i)
        sum += i->a;
    CHECK_EQ(sum, 120);
    sum = 0;
    for (PersistentPtr<Item> i = P.q; i-- != P.p;)
        sum += (*i).b;
    CHECK_EQ(sum, 1200);

    /* assignment of null in every spelling */
    P.q = nullptr;
    CHECK(!P.q);
    P.q = P.p;
    P.q = 0;
    CHECK(P.q == nullptr);
    P.q = PersistentPtr<Item>();
    CHECK(P.q.get() == nullptr);
    P.q = PersistentPtr<Item>(s); /* [seed] a null pointer "of" a space */
    CHECK(!P.q);
    CHECK(P.q.get_space() == (in_space ? s : nullptr));
    P.p = nullptr;
    P.c = nullptr;
    P.v = nullptr;
}

void test_operators(allocator_space_t *s)
{
    Item *arr = static_cast<Item *>(persistent_malloc(s, 16 * sizeof(Item)));
    REQUIRE(arr != nullptr);

    Ptrs on_stack;
    exercise(on_stack, arr, s, false);

    void *blk = persistent_malloc(s, sizeof(Ptrs));
    REQUIRE(blk != nullptr);
    Ptrs *in_space = ::new (blk) Ptrs;
    exercise(*in_space, arr, s, true);

    /* heap-allocated pointer objects are outside every space too */
    std::unique_ptr<Ptrs> on_heap(new Ptrs);
    exercise(*on_heap, arr, s, false);

    /* a pointer in the space to something outside it (valid while the
     * space stays where it is) */
    int outside = 42;
    PersistentPtr<int> *x = ::new (persistent_malloc(s, sizeof(PersistentPtr<int>)))
        PersistentPtr<int>(&outside);
    CHECK(x->is_offset_encoded());
    CHECK(x->get() == &outside);
    CHECK(**x == 42);
    CHECK(x->get_space() == nullptr);
    persistent_free(s, x);

    in_space->~Ptrs();
    persistent_free(s, blk);
    persistent_free(s, arr);
}

/* ------------------------------------------------------------------------ */
/* Zeroed and unconstructed memory; bytes copied out of the space             */

void test_raw_memory(allocator_space_t *s)
{
    int *target = static_cast<int *>(persistent_malloc(s, sizeof(int)));
    REQUIRE(target != nullptr);
    *target = 7;

    /* zeroed memory holds null pointers */
    auto *z = static_cast<PersistentPtr<int> *>(persistent_calloc(s, 4, sizeof(PersistentPtr<int>)));
    REQUIRE(z != nullptr);
    for (int i = 0; i < 4; i++)
        CHECK(!z[i] && z[i].get() == nullptr);
    persistent_free(s, z);

    /* [seed] assigning into a fresh, unconstructed block never reads the
     * garbage that is there */
    auto *g = static_cast<PersistentPtr<int> *>(persistent_malloc(s, 4 * sizeof(PersistentPtr<int>)));
    REQUIRE(g != nullptr);
    std::memset(static_cast<void *>(g), 0xab, 4 * sizeof(PersistentPtr<int>));
    for (int i = 0; i < 4; i++)
        g[i] = PersistentPtr<int>(target, s);
    for (int i = 0; i < 4; i++) {
        CHECK(g[i].get() == target);
        CHECK(g[i].is_offset_encoded());
    }

    /* the bytes of an in-space pointer mean nothing outside every space:
     * they read as null rather than as a wild address */
    PersistentPtr<int> copied_bytes;
    std::memcpy(static_cast<void *>(&copied_bytes), static_cast<const void *>(&g[0]),
                sizeof copied_bytes);
    CHECK(copied_bytes.get() == nullptr);
    /* and test as null, so that a test guards the dereference */
    CHECK(!copied_bytes);
    CHECK(copied_bytes == nullptr && nullptr == copied_bytes);
    CHECK(!(copied_bytes != nullptr));
    /* the same for a space handle stored in the space */
    auto *handle = ::new (persistent_malloc(s, sizeof(PersistentSpace))) PersistentSpace(s);
    REQUIRE(handle != nullptr);
    CHECK(static_cast<bool>(*handle) && handle->unwrap() == s);
    PersistentSpace handle_bytes;
    std::memcpy(static_cast<void *>(&handle_bytes), static_cast<const void *>(handle),
                sizeof handle_bytes);
    CHECK(handle_bytes.unwrap() == nullptr);
    CHECK(!handle_bytes);
    persistent_free(s, handle);
    /* a copy made by the copy constructor is right */
    PersistentPtr<int> copied(g[0]);
    CHECK(copied.get() == target);
    CHECK(!copied.is_offset_encoded());

    persistent_free(s, g);
    persistent_free(s, target);

    /* character pointers convert to raw ones (std::basic_string needs it),
     * and arithmetic on them is still PersistentPtr's, not ambiguous */
    char *text = static_cast<char *>(persistent_malloc(s, 16));
    REQUIRE(text != nullptr);
    std::memcpy(text, "persistent", 11);
    auto *pc = ::new (persistent_malloc(s, sizeof(PersistentPtr<char>))) PersistentPtr<char>(text);
    const char *as_raw = *pc;
    CHECK(as_raw == text);
    CHECK(std::strcmp(*pc, "persistent") == 0);
    CHECK(*(*pc + std::size_t(3)) == 's');
    CHECK((*pc)[4u] == 'i');
    CHECK(*pc + 10 - *pc == 10);
    PersistentPtr<const char> pcc = *pc;
    CHECK(std::strlen(pcc) == 10);
    persistent_free(s, pc);
    persistent_free(s, text);
}

/* ------------------------------------------------------------------------ */
/* A block holding pointers, copied with memcpy and moved by realloc          */

struct Blob {
    PersistentPtr<Item> to_item;
    PersistentPtr<Item> to_item_end;
    PersistentPtr<Blob> to_blob;
    PersistentPtr<Blob> to_self;
    PersistentSpace space;
    PersistentAllocator<int> alloc;
    AtomicPersistentPtr<Item> atom;
    char pad[40];
};

void check_blob(const Blob *b, Item *items, const Blob *other, const Blob *original,
                allocator_space_t *s, const char *when)
{
    int before = pmt::failures;
    CHECK(b->to_item.get() == items);
    CHECK(b->to_item_end - b->to_item == 8);
    CHECK(b->to_item_end[-1].a == 7);
    CHECK(b->to_blob.get() == other);
    /* a pointer into its own block keeps pointing at the original place:
     * offsets from the base do not follow the copy (documented) */
    CHECK(b->to_self.get() == original);
    CHECK(b->space.unwrap() == s);
    CHECK(b->alloc.space() == s);
    CHECK(b->atom.load().get() == items + 3);
    CHECK(b->atom.load_raw()->b == 30);
    if (pmt::failures != before)
        std::fprintf(stderr, "  (blob checks after %s)\n", when);
}

void test_relocation(allocator_space_t *s)
{
    Item *items = static_cast<Item *>(persistent_malloc(s, 8 * sizeof(Item)));
    Blob *other = static_cast<Blob *>(persistent_calloc(s, 1, sizeof(Blob)));
    void *mem = persistent_malloc(s, sizeof(Blob));
    REQUIRE(items && other && mem);
    for (std::uint64_t i = 0; i < 8; i++)
        items[i] = Item{i, i * 10, i * 100};
    Blob *b = ::new (mem) Blob{};
    b->to_item = items;
    b->to_item_end = b->to_item + 8;
    b->to_blob = other;
    b->to_self = b;
    b->space = s;
    b->alloc = PersistentAllocator<int>(s);
    b->atom.store(items + 3);
    check_blob(b, items, other, b, s, "construction");

    /* memcpy into another block of the space */
    void *copy = persistent_malloc(s, sizeof(Blob));
    REQUIRE(copy != nullptr);
    std::memcpy(copy, static_cast<const void *>(b), sizeof(Blob));
    check_blob(static_cast<Blob *>(copy), items, other, b, s, "memcpy");

    /* the allocator in the copied bytes still allocates from the space */
    Blob *c = static_cast<Blob *>(copy);
    PersistentPtr<int> ints = c->alloc.allocate(100);
    CHECK(persistent_space_of(ints.get()) == s);
    c->alloc.deallocate(ints, 100);

    /* persistent_realloc moves it (grown far beyond a small block) */
    char *moving = static_cast<char *>(copy);
    REQUIRE(persistent_realloc(s, moving, 256 * 1024));
    CHECK(static_cast<void *>(moving) != copy); /* it did move */
    check_blob(reinterpret_cast<Blob *>(moving), items, other, b, s, "persistent_realloc");

    /* and back down, and with the publishing realloc */
    persistent_offset_t off = ptr_to_persistent_offset(s, moving);
    persistent_offset_t *slot = static_cast<persistent_offset_t *>(
        persistent_malloc(s, sizeof(persistent_offset_t)));
    REQUIRE(slot != nullptr);
    *slot = off;
    REQUIRE(persistent_realloc_into(s, slot, 1024 * 1024) == 0);
    check_blob(static_cast<Blob *>(persistent_offset_to_ptr(s, *slot)), items, other, b, s,
               "persistent_realloc_into");
    REQUIRE(persistent_free_from(s, slot) == 0);
    persistent_free(s, slot);

    b->~Blob();
    persistent_free(s, b);
    persistent_free(s, other);
    persistent_free(s, items);
}

/* ------------------------------------------------------------------------ */
/* A remap within this process                                                */

constexpr std::uint64_t root_tag = 0x7074722d726f6f74ull;

struct Root {
    PersistentPtr<Item> arr;
    PersistentPtr<Item> mid;
    PersistentPtr<Root> self;
    PersistentSpace space;
    AtomicPersistentPtr<Item> atom;
    Item *raw; /* a plain pointer, for restore() */
};

void test_remap(const std::string &path)
{
    allocator_space_t *s = create_persistent_allocator(path.c_str(), 1u << 20);
    REQUIRE(s != nullptr);
    PersistentSpace ps(s);
    Root *r = ps.find_or_construct_root<Root>(root_tag);
    REQUIRE(r != nullptr);
    Item *arr = ps.alloc_array<Item>(16);
    REQUIRE(arr != nullptr);
    for (std::uint64_t i = 0; i < 16; i++)
        arr[i] = Item{i, i + 1, i + 2};
    r->arr = arr;
    r->mid = r->arr + 8;
    r->self = r;
    r->space = s;
    r->atom = arr + 3;
    r->raw = arr + 5;
    const std::uint64_t arr_off = pmt::addr(arr) - pmt::addr(s);
    const std::uint64_t old_base = pmt::addr(s);

    s = pmt::reopen_elsewhere(s, path);
    CHECK(pmt::addr(s) != old_base);
    ps = s;
    r = ps.find_root<Root>(root_tag);
    REQUIRE(r != nullptr);
    CHECK(ps.find_root<Root>(root_tag) == r);
    CHECK_EQ(pmt::addr(r->arr.get()), pmt::addr(s) + arr_off);
    CHECK_EQ(r->mid - r->arr, 8);
    CHECK_EQ(r->mid->a, 8);
    CHECK_EQ(r->arr[15].c, 17);
    CHECK(r->self.get() == r);
    CHECK(r->space.unwrap() == s);
    CHECK(r->atom.load() == r->arr + 3);
    CHECK(r->arr.get_space() == s);
    /* the raw pointer is stale; restore() rewrites it */
    CHECK(pmt::addr(r->raw) == old_base + arr_off + 5 * sizeof(Item));
    CHECK(ps.restore(r->raw) == r->arr.get() + 5);
    CHECK(ps.restore(r->raw)->b == 6);

    /* still usable: arithmetic and stores in the new mapping */
    r->mid += 2;
    CHECK_EQ(r->mid->a, 10);
    Item *expected = r->arr.get();
    CHECK(r->atom.compare_exchange_strong(expected, r->arr.get() + 4) == false);
    CHECK(expected == r->arr.get() + 3);
    CHECK(r->atom.compare_exchange_strong(expected, r->arr.get() + 4));
    CHECK(r->atom.load()->a == 4);

    ps.free_array(r->arr.get(), 16);
    CHECK_EQ(ps.destroy_root<Root>(root_tag), 0);
    destroy_persistent_allocator(s);
}

/* ------------------------------------------------------------------------ */
/* Two spaces                                                                 */

void test_two_spaces(const std::string &pa, const std::string &pb)
{
    allocator_space_t *a = create_persistent_allocator(pa.c_str(), 1u << 20);
    allocator_space_t *b = create_persistent_allocator(pb.c_str(), 1u << 20);
    REQUIRE(a && b);
    int *in_b = static_cast<int *>(persistent_malloc(b, sizeof(int)));
    REQUIRE(in_b != nullptr);
    *in_b = 99;
    auto *in_a = ::new (persistent_malloc(a, sizeof(PersistentPtr<int>))) PersistentPtr<int>(in_b);
    CHECK(in_a->get() == in_b);
    CHECK(in_a->get_space() == b);
    CHECK(**in_a == 99);
    PersistentPtr<int> on_stack(*in_a);
    CHECK(on_stack.get() == in_b);
    persistent_free(a, in_a);
    persistent_free(b, in_b);
    destroy_persistent_allocator(b);
    destroy_persistent_allocator(a);
}

} // namespace

namespace {

struct B1 {
    long a;
};
struct B2 {
    long b;
};
struct D : B1, B2 {
    long c;
};

/* Pointers to a class and to its second base, designating one object:
 * equal, as the raw pointers are, though the addresses differ. */
void test_compare_bases(allocator_space_t *s)
{
    D *in_space = static_cast<D *>(persistent_malloc(s, sizeof(D)));
    REQUIRE(in_space != nullptr);
    D on_stack{};
    for (D *rd : {in_space, &on_stack}) {
        B2 *rb = rd;
        REQUIRE(static_cast<void *>(rb) != static_cast<void *>(rd));
        PersistentPtr<D> pd(rd);
        PersistentPtr<B2> pb(pd);
        CHECK(pb.get() == rb);
        CHECK(pd == pb);
        CHECK(pb == pd);
        CHECK(!(pd != pb));
        CHECK(!(pd < pb) && !(pb < pd) && pd <= pb && pd >= pb);
        CHECK(pd == rb);
        CHECK(rb == pd);
        CHECK(rd == pb);
        CHECK(pb == rd);
        CHECK(!(pd != rb) && !(rd != pb));
        CHECK(!(pd < rb) && !(rb < pd) && !(rd > pb) && !(pb > rd));
        PersistentPtr<const B2> pcb(pd);
        CHECK(pcb == pd && pd == pcb);
        /* still an order of addresses: the next object is greater */
        PersistentPtr<B2> after(rb + 1);
        CHECK(pd < after && after > pd && pd != after);
        PersistentPtr<D> none;
        PersistentPtr<B2> none2;
        CHECK(none == none2 && none != pb && pd != none2);
    }
    persistent_free(s, in_space);
}

} // namespace

int main()
{
    const std::string path = pmt::path("ptr");
    allocator_space_t *s = create_persistent_allocator(path.c_str(), 4u << 20);
    REQUIRE(s != nullptr);
    test_operators(s);
    test_raw_memory(s);
    test_relocation(s);
    test_compare_bases(s);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(s, &rep), 0);
    destroy_persistent_allocator(s);

    test_remap(pmt::path("ptr-remap"));
    test_two_spaces(pmt::path("ptr-a"), pmt::path("ptr-b"));
    return pmt::done();
}

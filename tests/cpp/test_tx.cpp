// Transactions from C++: Transaction aborts unless committed, transaction()
// commits or aborts and rethrows, nested levels flatten, tx_new/tx_delete
// allocate and free with the transaction, and an exception thrown half way
// through a change leaves the space as it was.
#include "cpp_test.hpp"

#include <persistent_space.hpp>
#include <persistent_tx.hpp>

#include <stdexcept>

using namespace persistent_mem;

namespace {

struct Node {
    long key;
    long value;
    PersistentPtr<Node> next;
};

struct List {
    long count;
    long sum;
    PersistentPtr<Node> head;
};

long walk_sum(const List *l, long *n)
{
    long s = 0;
    *n = 0;
    for (const Node *p = l->head.get(); p; p = p->next.get()) {
        s += p->value;
        ++*n;
    }
    return s;
}

// Pushes a node in a transaction; throws after the changes when asked.
void push(allocator_space_t *s, List *l, long key, bool fail)
{
    transaction(s, [&] {
        tx_add(s, *l);
        Node *n = tx_new<Node>(s);
        n->key = key;
        n->value = key * 10;
        n->next = l->head;
        l->head = n;
        l->count++;
        l->sum += n->value;
        if (fail)
            throw std::runtime_error("refused");
    });
}

void test_raii(allocator_space_t *s)
{
    long *v = static_cast<long *>(persistent_malloc(s, sizeof(long) * 4));
    REQUIRE(v != nullptr);
    v[0] = 1;
    {
        Transaction tx(s);
        tx_add(s, v, 4);
        v[0] = 2;
    } // no commit: aborted
    CHECK_EQ(v[0], 1);
    CHECK_EQ(persistent_tx_depth(s), 0);
    {
        Transaction tx(s);
        tx_add(s, v[0]);
        v[0] = 3;
        {
            Transaction inner(s);
            CHECK_EQ(persistent_tx_depth(s), 2);
            tx_add(s, v[1]);
            v[1] = 30;
            inner.commit();
        }
        tx.commit();
    }
    CHECK_EQ(v[0], 3);
    CHECK_EQ(v[1], 30);
    {
        // an inner abort ends the whole; the outer's destructor is quiet
        Transaction tx(s);
        tx_add(s, v[0]);
        v[0] = 4;
        {
            Transaction inner(s);
            inner.abort();
        }
        CHECK_EQ(persistent_tx_depth(s), 0);
    }
    CHECK_EQ(v[0], 3);
    bool threw = false;
    try {
        Transaction tx(s);
        tx.commit();
        tx.commit();
    } catch (const TxError &e) {
        threw = true;
    }
    CHECK(threw);
    persistent_free(s, v);
}

void test_list(allocator_space_t *s)
{
    bool created;
    List *l = static_cast<List *>(persistent_root_get(s, 0x1157, sizeof(List), &created));
    REQUIRE(l != nullptr && created);
    for (long k = 1; k <= 50; k++) {
        bool fail = k % 3 == 0;
        try {
            push(s, l, k, fail);
            CHECK(!fail);
        } catch (const std::runtime_error &) {
            CHECK(fail);
        }
    }
    long n;
    CHECK_EQ(walk_sum(l, &n), l->sum);
    CHECK_EQ(n, l->count);
    CHECK_EQ(l->count, 34);
    // tx_delete of every even key, one transaction
    transaction(s, [&] {
        PersistentPtr<Node> *link = &l->head;
        tx_add(s, *l);
        while (Node *p = link->get()) {
            if (p->key % 2 == 0) {
                tx_add(s, *link);
                l->count--;
                l->sum -= p->value;
                *link = p->next;
                tx_delete(s, p);
            } else {
                link = &p->next;
            }
        }
    });
    CHECK_EQ(walk_sum(l, &n), l->sum);
    CHECK_EQ(n, l->count);
    CHECK_EQ(l->count, 17);
    // the same, thrown out half way: nothing changed
    long before = l->sum, count = l->count;
    try {
        transaction(s, [&] {
            tx_add(s, *l);
            Node *p = l->head.get();
            l->head = p->next;
            l->count--;
            l->sum -= p->value;
            tx_delete(s, p);
            throw std::bad_alloc();
        });
    } catch (const std::bad_alloc &) {
    }
    CHECK_EQ(l->sum, before);
    CHECK_EQ(l->count, count);
    CHECK_EQ(walk_sum(l, &n), before);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(s, &rep), 0);
    // a value from transaction()
    long got = transaction(s, [&] { return l->count * 2; });
    CHECK_EQ(got, 34);
}

// transaction() hands back what fn returns as fn returns it: a reference to
// the object itself, not to a copy that dies with the call.
void test_return_reference(allocator_space_t *s)
{
    long *v = static_cast<long *>(persistent_malloc(s, sizeof(long)));
    REQUIRE(v != nullptr);
    *v = 41;
    long &ref = transaction(s, [&]() -> long & {
        tx_add(s, *v);
        ++*v;
        return *v;
    });
    CHECK(&ref == v);
    ref = 100;
    CHECK_EQ(*v, 100);
    const long &cref = transaction(s, [&]() -> const long & { return *v; });
    CHECK(&cref == v);
    long &&rref = transaction(s, [&]() -> long && { return std::move(*v); });
    CHECK(&rref == v);
    PersistentSpace ps(s);
    long &through_handle = transaction(ps, [&]() -> long & { return *v; });
    CHECK(&through_handle == v);
    // by value stays by value
    long copy = transaction(s, [&] { return *v + 1; });
    CHECK_EQ(copy, 101);
    persistent_free(s, v);
}

// tx_add(space, x) snapshots x itself, whatever its type: the whole of an
// array member, and a pointer member rather than what it points at.
void test_add_whole_object(allocator_space_t *s)
{
    struct Rec {
        long arr[4];
        long *cursor;
        long other[4];
    };
    Rec *r = static_cast<Rec *>(persistent_malloc(s, sizeof(Rec)));
    REQUIRE(r != nullptr);
    for (int i = 0; i < 4; i++) {
        r->arr[i] = i;
        r->other[i] = 100 + i;
    }
    r->cursor = &r->other[0];
    try {
        transaction(s, [&] {
            tx_add(s, r->arr);
            tx_add(s, r->cursor);
            for (int i = 0; i < 4; i++)
                r->arr[i] = -1;
            r->cursor = &r->other[3];
            throw std::runtime_error("abort");
        });
    } catch (const std::runtime_error &) {
    }
    for (int i = 0; i < 4; i++)
        CHECK_EQ(r->arr[i], i);
    CHECK(r->cursor == &r->other[0]);
    CHECK_EQ(r->other[0], 100);
    // the counted form still snapshots the objects the pointer designates
    {
        Transaction tx(s);
        tx_add(s, r->other, 4);
        for (int i = 0; i < 4; i++)
            r->other[i] = 0;
    }
    for (int i = 0; i < 4; i++)
        CHECK_EQ(r->other[i], 100 + i);
    persistent_free(s, r);
}

long live_blocks(allocator_space_t *s)
{
    persistent_stats st;
    REQUIRE(persistent_stats_get(s, &st) == 0);
    return static_cast<long>(st.live_blocks);
}

int hook_calls = 0;
void count_hook(allocator_space_t *, int code, const void *, const char *msg, void *)
{
    std::fprintf(stderr, "error hook: %d %s\n", code, msg);
    hook_calls++;
}

struct Picky {
    long v;
    explicit Picky(long x) : v(x)
    {
        if (x < 0)
            throw std::invalid_argument("negative");
    }
};

// A constructor that throws inside tx_new gives its block back, whether the
// caller goes on and commits or lets the exception abort the transaction.
void test_new_throws(allocator_space_t *s)
{
    persistent_error_hook_set(count_hook, nullptr);
    transaction(s, [&] { tx_delete(s, tx_new<Picky>(s, 1)); }); // the log's blocks
    const long before = live_blocks(s);
    Picky *kept = nullptr;
    transaction(s, [&] {
        for (long i = 0; i < 20; i++) {
            try {
                (void)tx_new<Picky>(s, -1);
                CHECK(false);
            } catch (const std::invalid_argument &) {
            }
        }
        kept = tx_new<Picky>(s, 7);
    });
    CHECK_EQ(live_blocks(s), before + 1);
    CHECK_EQ(kept->v, 7);
    try {
        transaction(s, [&] { (void)tx_new<Picky>(s, -2); });
        CHECK(false);
    } catch (const std::invalid_argument &) {
    }
    CHECK_EQ(live_blocks(s), before + 1);
    transaction(s, [&] { tx_delete(s, kept); });
    CHECK_EQ(live_blocks(s), before);
    CHECK_EQ(hook_calls, 0);
    persistent_error_hook_set(nullptr, nullptr);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(s, &rep), 0);
}

} // namespace

int main()
{
    std::string p = pmt::path("tx");
    allocator_space_t *s = create_persistent_allocator(p.c_str(), 8u << 20);
    REQUIRE(s != nullptr);
    test_raii(s);
    test_list(s);
    test_return_reference(s);
    test_add_whole_object(s);
    test_new_throws(s);
    destroy_persistent_allocator(s);
    return pmt::done();
}

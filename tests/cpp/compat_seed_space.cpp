/* Compatibility: a program in the style of the seed's PersistentSpace: a
 * "persistent class" made with alloc_root<T>(root_class, args...) that
 * keeps a PersistentSpace member and allocates through it (alloc<T>(args),
 * the seed's alloc<T>(count) arrays, free<T>), found again with
 * find_root<T>, and a raw pointer rewritten with restore<T>.
 * seed_program() below is the program; main() drives it through one exec'd
 * process per command, most of them at an address the space never had. */
#include "persistent_mem.h"
#include "persistent_ptr.hpp"
#include "persistent_space.hpp"

#include <cstdio>
#include <cstring>

#include "cpp_test.hpp"

#define REGISTRY_ROOT_CLASS 0x52454753 // "REGS"

using namespace persistent_mem;

static int destroyed_pairs = 0;

struct Pair {
    uint64_t key;
    uint64_t value;
    Pair(uint64_t k, uint64_t v) : key(k), value(v) {}
    ~Pair() { destroyed_pairs++; }
};

class Registry {
public:
    explicit Registry(allocator_space_t *space)
        : space_(space), names_(space), pairs_(space), count_(0), capacity_(0), last_(nullptr)
    {
    }

    bool add(const char *name, uint64_t value)
    {
        if (count_ == capacity_ && !grow())
            return false;
        size_t len = strlen(name);
        char *copy = space_.alloc<char>(len + 1);
        Pair *pair = space_.alloc<Pair>(static_cast<uint64_t>(count_), value);
        if (!copy || !pair)
            return false;
        memcpy(copy, name, len + 1);
        names_[count_] = PersistentPtr<char>(copy, space_.unwrap());
        pairs_[count_] = PersistentPtr<Pair>(pair, space_.unwrap());
        last_ = pair;
        count_++;
        return true;
    }

    bool remove(const char *name)
    {
        for (size_t i = 0; i < count_; i++) {
            if (strcmp(names_[i].get(), name) != 0)
                continue;
            space_.free(names_[i].get());
            space_.free(pairs_[i].get());
            for (size_t j = i + 1; j < count_; j++) {
                names_[j - 1] = names_[j];
                pairs_[j - 1] = pairs_[j];
            }
            count_--;
            return true;
        }
        return false;
    }

    void print() const
    {
        printf("%zu entries:", count_);
        for (size_t i = 0; i < count_; i++)
            printf(" %s=%llu", names_[i].get(), static_cast<unsigned long long>(pairs_[i]->value));
        printf("\n");
        Pair *last = space_.restore(last_);
        if (last)
            printf("last: key %llu value %llu\n", static_cast<unsigned long long>(last->key),
                   static_cast<unsigned long long>(last->value));
    }

private:
    bool grow()
    {
        size_t capacity = capacity_ ? capacity_ * 2 : 2;
        PersistentPtr<char> *names = space_.alloc<PersistentPtr<char>>(capacity);
        PersistentPtr<Pair> *pairs = space_.alloc<PersistentPtr<Pair>>(capacity);
        if (!names || !pairs)
            return false;
        for (size_t i = 0; i < count_; i++) {
            names[i] = names_[i];
            pairs[i] = pairs_[i];
        }
        space_.free(names_.get());
        space_.free(pairs_.get());
        names_ = PersistentPtr<PersistentPtr<char>>(names, space_.unwrap());
        pairs_ = PersistentPtr<PersistentPtr<Pair>>(pairs, space_.unwrap());
        capacity_ = capacity;
        return true;
    }

    PersistentSpace space_;
    PersistentPtr<PersistentPtr<char>> names_;
    PersistentPtr<PersistentPtr<Pair>> pairs_;
    size_t count_;
    size_t capacity_;
    Pair *last_; // raw: restore() rewrites it after the space moved
};

static int seed_program(const char *filename, int argc, char **argv)
{
    PersistentSpace space(create_persistent_allocator(filename, 1024 * 1024));
    if (!space)
        return 1;

    Registry *reg = space.find_root<Registry>(REGISTRY_ROOT_CLASS);
    if (!reg) {
        reg = space.alloc_root<Registry>(REGISTRY_ROOT_CLASS, space.unwrap());
        printf("new registry\n");
    }

    if (argc == 3 && strcmp(argv[0], "add") == 0) {
        if (!reg->add(argv[1], strtoull(argv[2], nullptr, 10)))
            return 1;
    } else if (argc == 2 && strcmp(argv[0], "del") == 0) {
        printf("%s %s\n", reg->remove(argv[1]) ? "removed" : "no", argv[1]);
        printf("destroyed %d\n", destroyed_pairs);
    }
    reg->print();

    destroy_persistent_allocator(space.unwrap());
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The driver                                                                 */

int main(int argc, char **argv)
{
    int status;
    if (pmt::SeedRuns::play(argc, argv, seed_program, &status))
        return status;

    pmt::SeedRuns runs("seed-space");
    const std::string &path = runs.path, &out = runs.out;

    CHECK_EQ(runs.step(false, {"add", "one", "1"}), 0);
    CHECK(pmt::contains(out, "new registry\n1 entries: one=1\nlast: key 0 value 1\n"));
    CHECK_EQ(runs.step(true, {"add", "two", "2"}), 0);
    CHECK_EQ(runs.step(true, {"add", "three", "3"}), 0); /* grows 2 -> 4 */
    CHECK_EQ(runs.step(false, {"add", "four", "4"}), 0);
    CHECK_EQ(runs.step(true, {"add", "five", "5"}), 0); /* grows 4 -> 8 */
    CHECK(pmt::contains(out, "5 entries: one=1 two=2 three=3 four=4 five=5\nlast: key 4 value 5\n"));
    CHECK_EQ(runs.step(true, {"del", "two"}), 0);
    CHECK(pmt::contains(out, "removed two\ndestroyed 1\n4 entries: one=1 three=3 four=4 five=5\n"));
    CHECK_EQ(runs.step(true, {"del", "nothing"}), 0);
    CHECK(pmt::contains(out, "no nothing\n"));
    CHECK_EQ(runs.step(true, {}), 0);
    CHECK(pmt::contains(out, "4 entries: one=1 three=3 four=4 five=5\nlast: key 4 value 5\n"));

    allocator_space_t *s = load_private_persistent_allocator(path.c_str());
    REQUIRE(s != nullptr);
    persistent_check_report rep;
    CHECK_EQ(persistent_check(s, &rep), 0);
    persistent_stats st;
    REQUIRE(persistent_stats_get(s, &st) == 0);
    CHECK_EQ(st.live_blocks, 1 + 2 + 4 * 2); /* root, two arrays, names and pairs */
    destroy_persistent_allocator(s);
    return pmt::done();
}

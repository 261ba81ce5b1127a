/* Compatibility: a program in the style of the seed's examples, built on
 * the C calls and PersistentPtr only: a growable array of strings in a
 * root, PersistentPtr<PersistentPtr<char>> pointing at an array of
 * PersistentPtr<char>, grown with the persistent_realloc macro (which moves
 * the array of pointers by copying its bytes), and a raw pointer rewritten
 * with persistent_ptr().  seed_program() below is the program; main() drives
 * it through one exec'd process per command, most of them at an address the
 * space never had, and compares what it prints. */
#include "persistent_mem.h"
#include "persistent_ptr.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cpp_test.hpp"

#define LIST_ROOT_CLASS 0x4c495354 // "LIST"

using namespace persistent_mem;

struct ListRoot {
    PersistentPtr<PersistentPtr<char>> items;
    size_t count;
    size_t capacity;
    char *last_added; // raw pointer: valid only in the mapping that stored it
};

static int seed_program(const char *filename, int argc, char **argv)
{
    allocator_space_t *space = create_persistent_allocator(filename, 1024 * 1024);
    if (!space) {
        fprintf(stderr, "cannot open %s\n", filename);
        return 1;
    }

    ListRoot *root = static_cast<ListRoot *>(persistent_find_root(space, LIST_ROOT_CLASS));
    if (!root) {
        root = static_cast<ListRoot *>(
            persistent_malloc_root(space, LIST_ROOT_CLASS, sizeof(ListRoot)));
        if (!root) {
            destroy_persistent_allocator(space);
            return 1;
        }
        root->items = PersistentPtr<PersistentPtr<char>>(space);
        root->count = 0;
        root->capacity = 0;
        printf("new list\n");
    }

    if (argc == 2 && strcmp(argv[0], "add") == 0) {
        if (root->count == root->capacity) {
            size_t capacity = root->capacity ? root->capacity * 2 : 4;
            PersistentPtr<char> *data = root->items.get();
            if (data == nullptr) {
                data = static_cast<PersistentPtr<char> *>(
                    persistent_malloc(space, capacity * sizeof(PersistentPtr<char>)));
                if (!data) {
                    destroy_persistent_allocator(space);
                    return 1;
                }
            } else if (!persistent_realloc(space, data, capacity * sizeof(PersistentPtr<char>))) {
                destroy_persistent_allocator(space);
                return 1;
            }
            root->items = PersistentPtr<PersistentPtr<char>>(data, space);
            root->capacity = capacity;
        }
        size_t len = strlen(argv[1]);
        char *str = static_cast<char *>(persistent_malloc(space, len + 1));
        if (!str) {
            destroy_persistent_allocator(space);
            return 1;
        }
        memcpy(str, argv[1], len + 1);
        // the slot was never constructed: assignment initialises it
        root->items[root->count] = PersistentPtr<char>(str, space);
        root->count++;
        root->last_added = str;
        printf("added %s\n", argv[1]);
    } else if (argc == 2 && strcmp(argv[0], "del") == 0) {
        for (size_t i = 0; i < root->count; i++) {
            char *s = root->items[i].get();
            if (s && strcmp(s, argv[1]) == 0) {
                persistent_free(space, s);
                root->items[i] = nullptr;
                printf("removed %s\n", argv[1]);
            }
        }
    } else if (argc == 1 && strcmp(argv[0], "compact") == 0) {
        size_t kept = 0;
        for (size_t i = 0; i < root->count; i++)
            if (root->items[i])
                root->items[kept++] = root->items[i];
        root->count = kept;
        printf("compacted to %zu\n", kept);
    }

    printf("%zu items:", root->count);
    PersistentPtr<PersistentPtr<char>> it = root->items;
    for (size_t i = 0; i < root->count; i++, ++it)
        printf(" %s", *it ? it->get() : "(null)");
    printf("\n");
    char *last = static_cast<char *>(persistent_ptr(space, root->last_added));
    printf("last added: %s\n", last ? last : "(none)");

    destroy_persistent_allocator(space);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The driver                                                                 */

int main(int argc, char **argv)
{
    int status;
    if (pmt::SeedRuns::play(argc, argv, seed_program, &status))
        return status;

    pmt::SeedRuns runs("seed-vector");
    const std::string &path = runs.path, &out = runs.out;

    CHECK_EQ(runs.step(false, {"add", "alpha"}), 0);
    CHECK(pmt::contains(out, "new list\nadded alpha\n1 items: alpha\nlast added: alpha\n"));
    /* each add in a new process; most at a new address; the array grows
     * from 4 to 8 to 16 slots by persistent_realloc on the way */
    const char *names[] = {"beta", "gamma", "delta", "epsilon", "zeta", "eta",
                           "theta", "iota", "kappa", "lambda"};
    int n = 0;
    for (const char *name : names) {
        CHECK_EQ(runs.step(n++ % 4 != 0, {"add", name}), 0);
        CHECK(pmt::contains(out, (std::string("added ") + name + "\n").c_str()));
    }
    CHECK(pmt::contains(out, "11 items: alpha beta gamma delta epsilon zeta eta theta iota kappa "
                        "lambda\nlast added: lambda\n"));
    CHECK_EQ(runs.step(true, {"del", "gamma"}), 0);
    CHECK_EQ(runs.step(true, {"del", "theta"}), 0);
    CHECK(pmt::contains(out, "removed theta\n11 items: alpha beta (null) delta epsilon zeta eta "
                        "(null) iota kappa lambda\n"));
    CHECK_EQ(runs.step(true, {"compact"}), 0);
    CHECK(pmt::contains(out, "compacted to 9\n9 items: alpha beta delta epsilon zeta eta iota "
                        "kappa lambda\nlast added: lambda\n"));
    CHECK_EQ(runs.step(true, {"add", "mu"}), 0);
    CHECK(pmt::contains(out, "10 items: alpha beta delta epsilon zeta eta iota kappa lambda "
                        "mu\nlast added: mu\n"));

    /* the file is consistent and every string accounted for */
    allocator_space_t *s = load_private_persistent_allocator(path.c_str());
    REQUIRE(s != nullptr);
    persistent_check_report rep;
    CHECK_EQ(persistent_check(s, &rep), 0);
    persistent_stats st;
    REQUIRE(persistent_stats_get(s, &st) == 0);
    CHECK_EQ(st.live_blocks, 1 + 1 + 10); /* root, array, strings */
    destroy_persistent_allocator(s);
    return pmt::done();
}

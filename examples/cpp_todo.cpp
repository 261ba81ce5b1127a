/* cpp_todo: a to-do list kept in a space with standard containers and
 * PersistentAllocator.  Each run opens the space, finds the list through a
 * typed root and goes on where the last run stopped: no file format, no
 * loading, no saving.
 *
 *   cpp_todo [FILE] add TEXT...   add a task
 *   cpp_todo [FILE] done N        mark task N done (undo N: not done)
 *   cpp_todo [FILE] rm N          remove task N
 *   cpp_todo [FILE] [list]        show the list
 *
 * FILE defaults to cpp_todo.space in the current directory.  Try:
 *   cpp_todo add buy milk; cpp_todo add write report; cpp_todo done 1; cpp_todo */
#include <persistent_allocator.hpp>
#include <persistent_space.hpp>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

using persistent_mem::PersistentAllocator;

namespace {

constexpr std::uint64_t todo_tag = 0x746f646f6c697374ull; /* "todolist" */

using Text = std::basic_string<char, std::char_traits<char>, PersistentAllocator<char>>;

struct Task {
    Text text;
    bool done = false;
    std::uint64_t id;
    Task(const std::string &t, std::uint64_t n, const PersistentAllocator<char> &a)
        : text(t.c_str(), a), id(n)
    {
    }
};

/* The root.  Built once, in the space, by find_or_construct_root; the
 * vector's allocator is default-constructed there and so allocates from
 * the space that holds it, wherever that is mapped next time. */
struct TodoList {
    std::vector<Task, PersistentAllocator<Task>> tasks;
    std::uint64_t next_id = 1;
    std::uint64_t runs = 0;
};

bool is_command(const char *s)
{
    return !std::strcmp(s, "add") || !std::strcmp(s, "done") || !std::strcmp(s, "undo") ||
           !std::strcmp(s, "rm") || !std::strcmp(s, "list");
}

int usage()
{
    std::fprintf(stderr, "usage: cpp_todo [FILE] [add TEXT... | done N | undo N | rm N | list]\n");
    return 2;
}

} // namespace

int main(int argc, char **argv)
{
    int arg = 1;
    const char *file = "cpp_todo.space";
    if (arg < argc && !is_command(argv[arg]))
        file = argv[arg++];
    const char *cmd = arg < argc ? argv[arg++] : "list";

    try {
        persistent_mem::Space space(file, 4u << 20);
        TodoList *todo = space.find_or_construct_root<TodoList>(todo_tag);
        if (todo == nullptr) {
            std::perror("cpp_todo: root");
            return 1;
        }
        todo->runs++;

        if (!std::strcmp(cmd, "add")) {
            if (arg >= argc)
                return usage();
            std::string text;
            for (; arg < argc; arg++)
                text += std::string(text.empty() ? "" : " ") + argv[arg];
            todo->tasks.emplace_back(text, todo->next_id++, PersistentAllocator<char>(space));
        } else if (!std::strcmp(cmd, "done") || !std::strcmp(cmd, "undo") ||
                   !std::strcmp(cmd, "rm")) {
            if (arg >= argc)
                return usage();
            const std::uint64_t id = std::strtoull(argv[arg], nullptr, 10);
            auto it = todo->tasks.begin();
            while (it != todo->tasks.end() && it->id != id)
                ++it;
            if (it == todo->tasks.end()) {
                std::fprintf(stderr, "cpp_todo: no task %" PRIu64 "\n", id);
                return 1;
            }
            if (!std::strcmp(cmd, "rm"))
                todo->tasks.erase(it);
            else
                it->done = !std::strcmp(cmd, "done");
        } else if (std::strcmp(cmd, "list") != 0) {
            return usage();
        }

        std::printf("%s: run %" PRIu64 ", mapped at %p, %zu task(s)\n", file, todo->runs,
                    static_cast<void *>(space.get()), todo->tasks.size());
        for (const Task &t : todo->tasks)
            std::printf("  %3" PRIu64 " [%c] %s\n", t.id, t.done ? 'x' : ' ', t.text.c_str());
        space.close();
    } catch (const persistent_mem::SpaceError &e) {
        std::fprintf(stderr, "cpp_todo: %s\n", e.what());
        return 1;
    } catch (const std::bad_alloc &) {
        std::fprintf(stderr, "cpp_todo: the space is full\n");
        return 1;
    }
    return 0;
}

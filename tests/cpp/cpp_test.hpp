/* Support for the C++ tests: checks that report file:line and keep going,
 * unique space files on /dev/shm removed at exit, re-running this program
 * in a freshly exec'd process, and making a space map at an address it has
 * never had. */
#ifndef PM_CPP_TEST_HPP
#define PM_CPP_TEST_HPP

#include <persistent_mem.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace pmt {

inline int failures = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__,    \
                         #cond);                                                     \
            pmt::failures++;                                                         \
        }                                                                            \
    } while (0)

#define CHECK_EQ(a, b)                                                               \
    do {                                                                             \
        const long long pmt_a = static_cast<long long>(a);                           \
        const long long pmt_b = static_cast<long long>(b);                           \
        if (pmt_a != pmt_b) {                                                        \
            std::fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, \
                         __LINE__, #a, #b, pmt_a, pmt_b);                            \
            pmt::failures++;                                                         \
        }                                                                            \
    } while (0)

/* A check whose failure makes the rest meaningless. */
#define REQUIRE(cond)                                                                \
    do {                                                                             \
        if (!(cond)) {                                                               \
            std::fprintf(stderr, "%s:%d: REQUIRE(%s) failed (%s)\n", __FILE__,       \
                         __LINE__, #cond, persistent_errormsg());                    \
            std::exit(1);                                                            \
        }                                                                            \
    } while (0)

inline int done()
{
    if (failures) {
        std::fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    return 0;
}

[[noreturn]] inline void skip(const char *why)
{
    std::printf("SKIP: %s\n", why);
    std::exit(77);
}

/* Never destroyed: cleanup() runs from atexit, possibly after static
 * destructors. */
inline std::vector<std::string> &owned_paths()
{
    static std::vector<std::string> *v = new std::vector<std::string>;
    return *v;
}
inline pid_t &owner()
{
    static pid_t p = 0;
    return p;
}
inline void cleanup()
{
    if (getpid() != owner() || std::getenv("PM_TEST_KEEP"))
        return;
    for (const std::string &p : owned_paths())
        unlink(p.c_str());
}

/* A space file name no other test uses, on /dev/shm when it exists; removed
 * when the process that asked for it exits. */
inline std::string path(const char *name)
{
    static int n;
    struct stat st;
    const char *dir = std::getenv("PM_TEST_DIR");
    if (dir == nullptr)
        dir = stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp";
    std::string p = std::string(dir) + "/pm-cpp-" + name + "-" + std::to_string(getpid()) +
                    "-" + std::to_string(++n) + ".space";
    unlink(p.c_str());
    if (owner() != getpid()) {
        if (owner() == 0)
            std::atexit(cleanup);
        owner() = getpid();
        owned_paths().clear();
    }
    owned_paths().push_back(p);
    return p;
}

inline std::string self_exe()
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    REQUIRE(n > 0);
    buf[n] = '\0';
    return buf;
}

/* Runs this program again in a new process (fork + execv: a fresh address
 * space layout, unlike a bare fork) with args; returns its exit status, or
 * 128 + signal.  With out, its standard output is captured there. */
inline int run_self(const std::vector<std::string> &args, std::string *out = nullptr)
{
    const std::string exe = self_exe();
    int pipefd[2] = {-1, -1};
    if (out != nullptr)
        REQUIRE(pipe(pipefd) == 0);
    std::fflush(nullptr);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (out != nullptr) {
            dup2(pipefd[1], 1);
            close(pipefd[0]);
            close(pipefd[1]);
        }
        std::vector<char *> argv;
        argv.push_back(const_cast<char *>(exe.c_str()));
        for (const std::string &a : args)
            argv.push_back(const_cast<char *>(a.c_str()));
        argv.push_back(nullptr);
        execv(exe.c_str(), argv.data());
        _exit(127);
    }
    if (out != nullptr) {
        close(pipefd[1]);
        char buf[4096];
        ssize_t n;
        out->clear();
        while ((n = read(pipefd[0], buf, sizeof buf)) > 0)
            out->append(buf, static_cast<std::size_t>(n));
        close(pipefd[0]);
    }
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Reserves an address range so that nothing else maps there; true when the
 * range is now taken (by this reservation, or already by something else). */
inline bool occupy(std::uint64_t base, std::uint64_t size)
{
    void *want = reinterpret_cast<void *>(static_cast<std::uintptr_t>(base));
    void *p = mmap(want, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return false;
    if (p != want) {
        /* the kernel moved the hint: some of the range is mapped already */
        munmap(p, size);
    }
    return true;
}

/* Takes the address range of every mapping the space at path has had (read
 * from its header through a private open, which writes nothing), so that
 * the next open maps it somewhere new.  Returns the bases taken. */
inline std::vector<std::uint64_t> occupy_earlier(const std::string &path)
{
    persistent_options o{};
    o.flags = PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER;
    allocator_space_t *s = nullptr;
    REQUIRE(persistent_space_open(path.c_str(), &o, &s) == 0);
    persistent_info in;
    REQUIRE(persistent_space_info(s, &in) == 0);
    REQUIRE(persistent_space_close(s) == 0);
    std::vector<std::uint64_t> bases;
    for (std::uint32_t i = 0; i < in.n_bases; i++) {
        REQUIRE(occupy(in.bases[i].base, in.bases[i].size));
        bases.push_back(in.bases[i].base);
    }
    return bases;
}

/* Closes s and opens path again within this process, with every range the
 * space has been mapped at taken first: the new mapping is at a new
 * address, as after a restart that could not get the old one. */
inline allocator_space_t *reopen_elsewhere(allocator_space_t *s, const std::string &path)
{
    persistent_info in;
    REQUIRE(persistent_space_info(s, &in) == 0);
    REQUIRE(persistent_space_close(s) == 0);
    for (std::uint32_t i = 0; i < in.n_bases; i++)
        REQUIRE(occupy(in.bases[i].base, in.bases[i].size));
    persistent_options o{};
    allocator_space_t *n = nullptr;
    REQUIRE(persistent_space_open(path.c_str(), &o, &n) == 0);
    for (std::uint32_t i = 0; i < in.n_bases; i++)
        REQUIRE(reinterpret_cast<std::uintptr_t>(n) != in.bases[i].base);
    return n;
}

/* Whether out holds want; if not, says so with out. */
inline bool contains(const std::string &out, const char *want)
{
    if (out.find(want) != std::string::npos)
        return true;
    std::fprintf(stderr, "expected \"%s\" in:\n%s", want, out.c_str());
    return false;
}

/* The driver of a seed-style program (a main that takes a file name and a
 * command): "SELF run PATH moved|same CMD..." plays one run of program on
 * PATH, at a new address with "moved"; the test runs those one by one with
 * step(moved, {CMD...}), each a fresh exec, and reads what it printed in out. */
struct SeedRuns {
    using Program = int (*)(const char *filename, int argc, char **argv);

    std::string path, out;

    /* In main: the run this process is to play, if it is one (returns
     * true and sets *status). */
    static bool play(int argc, char **argv, Program program, int *status)
    {
        if (argc < 4 || std::strcmp(argv[1], "run") != 0)
            return false;
        if (std::strcmp(argv[3], "moved") == 0)
            occupy_earlier(argv[2]);
        *status = program(argv[2], argc - 4, argv + 4);
        return true;
    }

    explicit SeedRuns(const char *name) : path(pmt::path(name)) {}

    int step(bool moved, std::vector<std::string> cmd)
    {
        cmd.insert(cmd.begin(), {"run", path, moved ? "moved" : "same"});
        return run_self(cmd, &out);
    }
};

inline std::uint64_t addr(const void *p)
{
    return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p));
}

} // namespace pmt

#endif

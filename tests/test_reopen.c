/* Reopen and relocation, each step in a freshly exec'd process (a forked
 * child would inherit the parent's address layout and prove nothing).
 *
 *   gen 1    creates the space at A, stores a raw pointer
 *   reopen   opens again: maps at A, the raw pointer works as it is
 *   gen 2..4 occupy every earlier base first, so the space maps elsewhere;
 *            data read through offsets is intact and persistent_ptr()
 *            rewrites the raw pointers stored during each earlier mapping
 */
#include "check.h"

#include <sys/mman.h>

#include "internal.h"

#define TAG 0x7265706f70656eull
#define GENS 5

struct record {
    uint64_t n;                        /* generations written */
    void *raw[GENS];                   /* raw pointer stored during gen i */
    persistent_offset_t off[GENS];
    uint64_t base[GENS];
};

static int run_child(const char *self, const char *role, const char *path, int gen)
{
    char g[16];
    snprintf(g, sizeof g, "%d", gen);
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, self, role, path, g, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Takes the address ranges of all earlier mappings so the space cannot
 * map at any of them. */
static void occupy_earlier(const char *path)
{
    struct pm_header h;
    int fd = open(path, O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h);
    close(fd);
    const struct pm_state *st = h.state[1].seq > h.state[0].seq ? &h.state[1] : &h.state[0];
    for (uint32_t i = 0; i < st->n_bases; i++) {
        void *want = (void *)(uintptr_t)st->bases[i].base;
        void *p = mmap(want, st->bases[i].size, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        REQUIRE(p == want);
    }
}

static int child(const char *role, const char *path, int gen)
{
    if (strcmp(role, "gen") == 0 && gen > 1)
        occupy_earlier(path);
    allocator_space_t *s = create_persistent_allocator(path, 4u << 20);
    REQUIRE(s != NULL);
    struct persistent_info in;
    REQUIRE(persistent_space_info(s, &in) == 0);
    bool created = false;
    struct record *r = persistent_root_get(s, TAG, sizeof *r, &created);
    REQUIRE(r != NULL);
    CHECK_EQ(created, gen == 1);
    CHECK_EQ(r->n, (uint64_t)(gen - 1));

    /* everything written before, through offsets and through persistent_ptr */
    for (uint64_t i = 0; i < r->n; i++) {
        char *want = persistent_offset_to_ptr(s, r->off[i]);
        char expect[48];
        snprintf(expect, sizeof expect, "written by gen %llu", (unsigned long long)i + 1);
        CHECK(strcmp(want, expect) == 0);
        CHECK(persistent_ptr(s, r->raw[i]) == want);
        CHECK(persistent_ptr_from(s, r->raw[i], i + 1) == want);
        if (r->base[i] == (uint64_t)(uintptr_t)s)
            CHECK(strcmp((char *)r->raw[i], expect) == 0);   /* valid as is */
    }

    if (strcmp(role, "reopen") == 0) {
        /* nothing occupied: the space comes back where it was */
        CHECK_EQ((uint64_t)(uintptr_t)s, r->base[r->n - 1]);
        CHECK_EQ(in.generation, r->n);
        char *raw = r->raw[r->n - 1];
        CHECK(strncmp(raw, "written by gen", 14) == 0);
        destroy_persistent_allocator(s);
        return t_done();
    }

    /* a new mapping: not at any earlier base */
    for (uint64_t i = 0; i < r->n; i++)
        CHECK((uint64_t)(uintptr_t)s != r->base[i]);
    CHECK_EQ(in.generation, (uint64_t)gen);
    CHECK_EQ(in.n_bases, (uint32_t)gen);
    CHECK_EQ(in.bases[0].base, (uint64_t)(uintptr_t)s);
    char *blk = persistent_malloc(s, 32);
    REQUIRE(blk != NULL);
    snprintf(blk, 32, "written by gen %d", gen);
    r->raw[r->n] = blk;
    r->off[r->n] = ptr_to_persistent_offset(s, blk);
    r->base[r->n] = (uint64_t)(uintptr_t)s;
    r->n++;
    /* generations that were never recorded rewrite nothing */
    CHECK(persistent_ptr_from(s, blk, 99) == NULL);
    t_check_clean(s, "after writing");
    destroy_persistent_allocator(s);
    return t_done();
}

int main(int argc, char **argv)
{
    if (argc == 4)
        return child(argv[1], argv[2], atoi(argv[3]));
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(n > 0);
    self[n] = '\0';
    if (!t_exec_works(self))
        t_skip("cannot exec itself here (emulated without binfmt_misc)");
    const char *path = t_path("reopen");
    CHECK_EQ(run_child(self, "gen", path, 1), 0);
    CHECK_EQ(run_child(self, "reopen", path, 2), 0);
    for (int g = 2; g <= 4; g++)
        CHECK_EQ(run_child(self, "gen", path, g), 0);
    CHECK_EQ(run_child(self, "reopen", path, 5), 0);
    unlink(path);
    return t_done();
}

/* The persistence layer: every write-back variant this CPU has runs, the
 * CPUID dispatch picks the right one for injected feature sets, a flushed
 * range covers exactly its lines, PERSISTENT_MEM_FLUSH is obeyed (and a
 * method the CPU lacks is a clear error), and the PMEM durability mode
 * works end to end with each forced method. */
#include "check.h"

#include "internal.h"

static char self[4096];

static void test_lines(void)
{
    /* the loop every variant uses: each touched line once, nothing else */
    static _Alignas(64) unsigned char buf[1024];
    for (size_t off = 0; off < 130; off++) {
        for (size_t len = 0; len < 200; len++) {
            uintptr_t first = ((uintptr_t)buf + off) / 64;
            uintptr_t last = ((uintptr_t)buf + off + len - 1) / 64;
            uintptr_t want = len ? last - first + 1 : 0;
            uintptr_t n = 0, expect = first * 64;
            PM_FOR_EACH_LINE(p, buf + off, len) {
                if (p != expect)
                    t_failures++;
                expect += 64;
                n++;
            }
            if (n != want) {
                fprintf(stderr, "off %zu len %zu: %zu lines, want %zu\n", off, len,
                        (size_t)n, (size_t)want);
                t_failures++;
            }
        }
    }
}

static void test_dispatch(void)
{
    struct {
        uint32_t feat;
        const char *want;
    } cases[] = {
#if defined(__x86_64__)
        {PM_CPU_CLWB | PM_CPU_CLFLUSHOPT | PM_CPU_CLFLUSH, "clwb"},
        {PM_CPU_CLWB | PM_CPU_CLFLUSH, "clwb"},
        {PM_CPU_CLFLUSHOPT | PM_CPU_CLFLUSH, "clflushopt"},
        {PM_CPU_CLFLUSH, "clflush"},
#elif defined(__aarch64__)
        {PM_CPU_DC_CVAP, "dc_cvap"},
        {PM_CPU_DC_CVAP | PM_CPU_CLWB, "dc_cvap"},   /* x86 bits mean nothing */
        {PM_CPU_CLWB | PM_CPU_CLFLUSH, "msync"},
#endif
        {0, "msync"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        CHECK_EQ(pm_flush_select("auto", cases[i].feat), 0);
        CHECK(strcmp(pm_flush_ops_get()->name, cases[i].want) == 0);
        CHECK(strcmp(persistent_flush_method(), cases[i].want) == 0);
    }
    /* asking for what the (injected) CPU lacks is an error, not a crash */
    CHECK_EQ(pm_flush_select("clwb", PM_CPU_CLFLUSH), PERSISTENT_E_FLUSH);
    CHECK_EQ(pm_flush_select("clflushopt", 0), PERSISTENT_E_FLUSH);
    CHECK_EQ(pm_flush_select("dc_cvap", 0), PERSISTENT_E_FLUSH);
    CHECK_EQ(pm_flush_select("bogus", PM_CPU_CLWB), PERSISTENT_E_FLUSH);
    CHECK_EQ(pm_flush_select("msync", 0), 0);
    CHECK_EQ(pm_flush_select("none", 0), 0);
    CHECK(strcmp(persistent_flush_method(), "none") == 0);
}

static void test_variants_run(void)
{
    /* every variant this CPU reports, on real memory, all alignments */
    uint32_t feat = arch_cpu_features();
    const struct pm_flush_ops *v[8];
    int n = arch_flush_variants(feat, v, 8);
#if defined(__x86_64__)
    CHECK(feat & PM_CPU_CLFLUSH);         /* every x86-64 CPU has CLFLUSH */
    CHECK(n >= 1);
#endif
    char *buf = malloc(1 << 16);
    memset(buf, 1, 1 << 16);
    for (int i = 0; i < n; i++) {
        for (size_t off = 0; off < 200; off += 7) {
            v[i]->flush(buf + off, 1000 + off);
            v[i]->drain();
        }
        buf[5] = (char)i;                 /* stores still land after a flush */
        v[i]->flush(buf, 64);
        v[i]->drain();
        CHECK_EQ(buf[5], i);
        printf("variant %s runs\n", v[i]->name);
    }
    free(buf);
    /* and the public calls with the process's own choice */
    CHECK_EQ(pm_flush_select("auto", feat), 0);
    static char line[256];
    persistent_persist(line + 3, 200);
    persistent_flush(line, 1);
    persistent_drain();
}

/* Child: PMEM durability with whatever PERSISTENT_MEM_FLUSH says. */
static int child_pmem(const char *path)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = 4u << 20;
    o.durability = PERSISTENT_DURABILITY_PMEM;
    allocator_space_t *s;
    int r = persistent_space_open(path, &o, &s);
    if (r == PERSISTENT_E_FLUSH) {
        printf("%s\n", persistent_errormsg());
        return 20;
    }
    if (r != 0)
        return 21;
    persistent_offset_t *slots = persistent_root_get(s, 1, 64 * sizeof *slots, NULL);
    if (slots == NULL)
        return 22;
    for (int round = 0; round < 20; round++)
        for (int i = 0; i < 64; i++) {
            if (slots[i])
                persistent_free_from(s, &slots[i]);
            if (persistent_alloc_into(s, &slots[i], 16 + (size_t)(i * 97 + round) % 9000) != 0)
                return 23;
            void *p = persistent_malloc(s, 100);
            persistent_free(s, p);
        }
    struct persistent_check_report rep;
    if (persistent_check(s, &rep) != 0)
        return 24;
    printf("%s\n", persistent_flush_method());
    persistent_space_close(s);
    return 0;
}

static int run_env(const char *value, const char *path, char *out, size_t n)
{
    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        if (value)
            setenv("PERSISTENT_MEM_FLUSH", value, 1);
        else
            unsetenv("PERSISTENT_MEM_FLUSH");
        execl(self, self, "pmem", path, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    ssize_t got = read(pfd[0], out, n - 1);
    out[got > 0 ? got : 0] = '\0';
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_environment(void)
{
    uint32_t feat = arch_cpu_features();
    static const char *methods[] = {"clwb", "clflushopt", "clflush", "dc_cvap",
                                    "msync", "none"};
    static const uint32_t need[] = {PM_CPU_CLWB, PM_CPU_CLFLUSHOPT, PM_CPU_CLFLUSH,
                                    PM_CPU_DC_CVAP, 0, 0};
    char out[512];
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        const char *p = t_path("env");
        int r = run_env(methods[i], p, out, sizeof out);
        if ((feat & need[i]) == need[i]) {
            CHECK_EQ(r, 0);
            CHECK(strncmp(out, methods[i], strlen(methods[i])) == 0);
        } else {
            CHECK_EQ(r, 20);
            CHECK(strstr(out, "does not have") != NULL);
        }
        unlink(p);
    }
    const char *p = t_path("env");
    CHECK_EQ(run_env("bogus", p, out, sizeof out), 20);
    CHECK(strstr(out, "unknown method") != NULL);
    CHECK(access(p, F_OK) != 0);      /* refused before anything was made */
    CHECK_EQ(run_env(NULL, p, out, sizeof out), 0);
    unlink(p);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "pmem") == 0)
        return child_pmem(argv[2]);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(n > 0);
    self[n] = '\0';
    test_lines();
    test_dispatch();
    test_variants_run();
    if (t_exec_works(self))
        test_environment();
    else
        printf("SKIP test_environment: cannot exec itself here (emulated "
               "without binfmt_misc)\n");
    return t_done();
}

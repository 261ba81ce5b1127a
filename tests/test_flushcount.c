/* Flushes and fences per call in PMEM durability (G3), counted by the
 * crash simulator in count-only mode (every flush and every fence of the
 * library is one of its points; nothing crashes).
 *
 *   test_flushcount            prints the table and checks the bounds
 *
 * Each row is the mean over many calls in a steady state (the class's
 * superblocks already made once, so what a call costs when it is not the
 * one that makes a superblock is what dominates); the calls that do make
 * or give back a superblock or take pages raise the mean above the floor.
 * G3 allows no fewer than one flush and one fence for a call that changes
 * the persistent truth, and the aim (issue 13) is exactly that:
 *   - malloc and free of a small block: one flush and one fence (its bit),
 *     plus, amortised, what claiming and releasing superblocks costs;
 *   - a free by another thread (remote): the same;
 *   - large blocks (whole pages): two of each, END then START (large.c:
 *     the END bit must be durable before the START that commits the run,
 *     or a torn allocation would read as a run reaching the next END);
 *   - the publishing calls (alloc-into, free-from): their lane record and
 *     the destination word on top (publish.c). */
#include "check.h"

#include <pthread.h>

#include "internal.h"

enum { N = 8192, NL = 256 };

static allocator_space_t *S;
static void *B[N];
static persistent_offset_t *D;
static double flushes, fences;

struct mark {
    uint64_t points, fences;
};

static struct mark now(void)
{
    return (struct mark){pm_crash_points(), pm_crash_fences()};
}

/* Sets flushes and fences to the mean per call since m over n calls. */
static void since(struct mark m, int n)
{
    struct mark e = now();
    fences = (double)(e.fences - m.fences) / n;
    flushes = (double)(e.points - m.points) / n - fences;
}

static bool ok = true;

static void row(const char *op, size_t size, double max_flush, double max_fence)
{
    bool good = flushes >= 1.0 && fences >= 1.0 && flushes <= max_flush && fences <= max_fence;
    printf("%-12s %7zu B  %6.3f flushes %6.3f fences   (aim <= %.2f / %.2f)%s\n", op, size,
           flushes, fences, max_flush, max_fence, good ? "" : "  <-- out of bounds");
    ok = ok && good;
}

static void *remote_free(void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < n; i++)
        persistent_free(S, B[i]);
    return NULL;
}

/* small: the bounds for a size whose superblock holds many blocks */
static void measure(size_t size, double max_flush, double max_fence)
{
    int n = size > (64u << 10) ? NL : N;
    for (int i = 0; i < n; i++)       /* warm: the superblocks exist */
        REQUIRE((B[i] = persistent_malloc(S, size)) != NULL);
    for (int i = 0; i < n; i++)
        persistent_free(S, B[i]);

    struct mark m = now();
    for (int i = 0; i < n; i++)
        REQUIRE((B[i] = persistent_malloc(S, size)) != NULL);
    since(m, n);
    row("malloc", size, max_flush, max_fence);

    m = now();
    for (int i = 0; i < n; i++)
        persistent_free(S, B[i]);
    since(m, n);
    row("free", size, max_flush, max_fence);

    for (int i = 0; i < n; i++)
        REQUIRE((B[i] = persistent_malloc(S, size)) != NULL);
    m = now();
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, remote_free, &n) == 0);
    pthread_join(t, NULL);
    since(m, n);
    row("remote free", size, max_flush, max_fence);
    /* the owner takes the remote frees back (not counted) */
    for (int i = 0; i < n; i++)
        REQUIRE((B[i] = persistent_malloc(S, size)) != NULL);
    for (int i = 0; i < n; i++)
        persistent_free(S, B[i]);

    /* the publishing calls: the lane record and the destination on top */
    m = now();
    for (int i = 0; i < n; i++)
        REQUIRE(persistent_alloc_into(S, &D[i], size) == 0);
    since(m, n);
    row("alloc-into", size, max_flush + 3, max_fence + 3);
    m = now();
    for (int i = 0; i < n; i++)
        REQUIRE(persistent_free_from(S, &D[i]) == 0);
    since(m, n);
    row("free-from", size, max_flush + 3, max_fence + 3);
}

int main(void)
{
    const char *p = t_path("flushcount");
    pm_crash_arm(0, PM_CRASH_KILL, 1);          /* count only */
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = 128u << 20;
    o.durability = PERSISTENT_DURABILITY_PMEM;
    REQUIRE(persistent_space_open(p, &o, &S) == 0);
    D = persistent_root_get(S, 1, N * sizeof *D, NULL);
    REQUIRE(D != NULL);
    measure(16, 1.01, 1.01);
    measure(100, 1.02, 1.02);
    measure(1000, 1.10, 1.10);
    measure(5000, 1.40, 1.40);
    measure(100000, 2.0, 2.0);
    t_check_clean(S, "after counting");
    REQUIRE(persistent_space_close(S) == 0);
    CHECK(ok);
    return t_done();
}

/* G5b: a free needs no room.  Every publishing call takes a lane, and a
 * thread keeps its lane for as long as it lives; when every lane is held
 * by a live thread (idle, in no call), the next thread's call adds an
 * overflow lane table allocated from the heap.  In a full space that
 * allocation fails, and so did persistent_free_from and
 * persistent_root_remove: frees, the calls that would make room, refused
 * with -ENOMEM (a helper's hunt).  Such a call now goes through the
 * header's chunk lane (publish.c pub_lane_any), and so do root_get,
 * alloc_into and realloc_into into the room made. */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"

static allocator_space_t *S;
static persistent_offset_t *slots;
static _Atomic int started;
static pthread_barrier_t done;

static void *idle_publisher(void *arg)
{
    int i = (int)(intptr_t)arg;
    CHECK_EQ(persistent_alloc_into(S, &slots[i], 64), 0);   /* takes a lane */
    atomic_fetch_add(&started, 1);
    pthread_barrier_wait(&done);                           /* keeps it */
    return NULL;
}

static int rc_free = 1, rc_remove = 1, rc_alloc = 1, rc_realloc = 1;
static void *root_made;
static persistent_offset_t after_free = 1;

static void *freer(void *arg)
{
    (void)arg;
    rc_free = persistent_free_from(S, &slots[0]);
    after_free = slots[0];
    rc_remove = persistent_root_remove(S, 77);
    root_made = persistent_root_get(S, 78, 100, NULL);
    /* and the room they made is the lane-less thread's to publish into */
    rc_alloc = persistent_alloc_into(S, &slots[0], 64);
    rc_realloc = persistent_realloc_into(S, &slots[0], 48);
    return NULL;
}

int main(void)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = 1u << 20;
    REQUIRE(persistent_space_open(t_path("lanefull"), &o, &S) == 0);
    slots = persistent_root_get(S, 1, 256 * sizeof *slots, NULL);  /* main's lane */
    REQUIRE(slots != NULL);
    REQUIRE(persistent_root_get(S, 77, 100, NULL) != NULL);

    /* main and these hold every lane: the space's own and one overflow
     * table's (made while there is room) */
    struct pm_rt *rt = pm_rt_of(S);
    REQUIRE(rt != NULL);
    int n = (int)(rt->fixed.n_lanes + PM_LANE_CHUNK) - 1;
    REQUIRE(n < 256);
    pthread_barrier_init(&done, NULL, (unsigned)n + 1);
    pthread_t t[256];
    for (int i = 0; i < n; i++) {
        REQUIRE(pthread_create(&t[i], NULL, idle_publisher, (void *)(intptr_t)i) == 0);
        while (atomic_load(&started) <= i)
            usleep(100);
    }

    /* the space full */
    for (size_t sz = 1u << 20; sz >= 16; sz /= 2)
        while (persistent_malloc(S, sz))
            ;

    /* a thread with no lane frees a published block and a root */
    pthread_t f;
    REQUIRE(pthread_create(&f, NULL, freer, NULL) == 0);
    pthread_join(f, NULL);
    CHECK_EQ(rc_free, 0);
    CHECK_EQ(after_free, 0);
    CHECK_EQ(rc_remove, 0);
    CHECK(persistent_find_root(S, 77) == NULL);
    CHECK(root_made != NULL && persistent_find_root(S, 78) == root_made);
    CHECK_EQ(rc_alloc, 0);
    CHECK(slots[0] != 0);
    CHECK_EQ(rc_realloc, 0);

    pthread_barrier_wait(&done);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    struct persistent_check_report rep;
    CHECK_EQ(persistent_check(S, &rep), 0);
    persistent_space_close(S);
    return t_done();
}

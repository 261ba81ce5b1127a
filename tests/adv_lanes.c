/* More live threads than the space's lanes, each of which made one
 * publishing call and then idles; the space full; then a further thread
 * frees a published block (free_from) and removes a root.  A free must not
 * fail for want of room (G5b: no false exhaustion), nor need any. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "persistent_mem.h"

static allocator_space_t *S;
static persistent_offset_t *slots;
static pthread_barrier_t bar, done;
static int false_enomem, started;

static void *idle_publisher(void *arg)
{
    int i = (int)(intptr_t)arg;
    int rc = persistent_alloc_into(S, &slots[i], 64);
    if (rc != 0) {
        struct persistent_stats st;
        persistent_stats_get(S, &st);
        fprintf(stderr, "FINDING: alloc_into in thread %d: %d (%s), errormsg '%s'; space %" PRIu64 " B, %" PRIu64
                " B live, %" PRIu64 " B of free pages\n", i, rc, strerror(-rc), persistent_errormsg(),
                st.capacity, st.live_bytes, st.free_bytes);
        __atomic_add_fetch(&false_enomem, 1, __ATOMIC_RELAXED);
    }
    __atomic_add_fetch(&started, 1, __ATOMIC_RELEASE);
    pthread_barrier_wait(&bar);   /* stays alive, holding its lane */
    pthread_barrier_wait(&done);
    return NULL;
}

static int rc_free, rc_remove;
static void *plainblk, *newblk;
static int plain_errno;
static void *freer(void *arg)
{
    (void)arg;
    persistent_free(S, plainblk);
    errno = 0;
    newblk = persistent_malloc(S, 64);
    plain_errno = errno;
    rc_free = persistent_free_from(S, &slots[0]);
    rc_remove = persistent_root_remove(S, 77);
    return NULL;
}

int main(int argc, char **argv)
{
    int nthr = argc > 1 ? atoi(argv[1]) : 16;
    size_t size = argc > 2 ? strtoull(argv[2], 0, 0) : (1 << 20);
    char path[] = "/dev/shm/advlanes-XXXXXX";
    close(mkstemp(path));
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = size;
    if (persistent_space_open(path, &o, &S)) return 2;
    slots = persistent_root_get(S, 1, sizeof(persistent_offset_t) * 8192, NULL);
    if (!persistent_root_get(S, 77, 100, NULL)) return 2;
    plainblk = persistent_malloc(S, 1000);
    pthread_barrier_init(&bar, NULL, (unsigned)nthr + 1);
    pthread_barrier_init(&done, NULL, (unsigned)nthr + 1);
    static pthread_t t[8192];
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 128 << 10);
    /* one after the other: each has its lane before the next starts */
    for (int i = 0; i < nthr; i++) {
        pthread_create(&t[i], &at, idle_publisher, (void *)(intptr_t)i);
        while (__atomic_load_n(&started, __ATOMIC_ACQUIRE) <= i)
            usleep(100);
    }
    pthread_barrier_wait(&bar);
    /* fill the space from this thread */
    size_t n = 0;
    if (getenv("NOFILL") == NULL)
    for (size_t sz = 1 << 20; sz >= 16; sz /= 2)
        while (persistent_malloc(S, sz))
            n++;
    printf("%d idle publishers, space %zu: filled with %zu more blocks\n", nthr, size, n);
    pthread_t f;
    pthread_create(&f, NULL, freer, NULL);
    pthread_join(f, NULL);
    printf("plain free from the new thread: block still live: %d; malloc(64) from it: %p errno %d\n",
           persistent_usable_size(S, plainblk) != 0, newblk, plain_errno);
    printf("free_from from a new thread: %d (%s); root_remove: %d\n", rc_free,
           rc_free ? strerror(-rc_free) : "ok", rc_remove);
    int bad = rc_free != 0 || rc_remove != 0 || false_enomem;
    if (bad)
        printf("FINDING: a free failed in a full space with %d threads holding lanes\n", nthr);
    pthread_barrier_wait(&done);
    for (int i = 0; i < nthr; i++)
        pthread_join(t[i], NULL);
    persistent_space_close(S);
    unlink(path);
    return bad;
}

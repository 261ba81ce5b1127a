/* demo: a session table that survives restarts.
 *
 *   demo FILE         run it twice: the first run stores 10,000 sessions
 *                     from 4 threads; every later run finds them again,
 *                     verifies each one and counts a visit.
 *
 * The table is a lock-free hash table that lives in the space: buckets hold
 * offsets (so the file works at any address), new sessions are pushed onto
 * their bucket with a CAS, and the table is found again through a root.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <persistent_mem.h>

#define ROOT_TAG   0x73657373696f6e73ull   /* "sessions" */
#define N_BUCKETS  4096
#define N_THREADS  4
#define N_SESSIONS 10000

struct session {
    uint64_t id;
    uint64_t visits;                 /* one per run that saw it */
    char user[32];
    uint64_t check;                  /* of id and user */
    _Atomic persistent_offset_t next;
};

struct table {
    uint64_t created;                /* wall-clock seconds of the first run */
    _Atomic uint64_t runs;
    _Atomic uint64_t count;
    _Atomic persistent_offset_t bucket[N_BUCKETS];
};

static allocator_space_t *space;
static struct table *table;

static uint64_t hash(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static uint64_t check_of(const struct session *s)
{
    uint64_t h = hash(s->id);
    for (size_t i = 0; i < sizeof s->user && s->user[i]; i++)
        h = hash(h ^ (unsigned char)s->user[i]);
    return h;
}

static struct session *lookup(uint64_t id)
{
    persistent_offset_t off = atomic_load(&table->bucket[hash(id) % N_BUCKETS]);
    while (off) {
        struct session *s = persistent_offset_to_ptr(space, off);
        if (s->id == id)
            return s;
        off = atomic_load(&s->next);
    }
    return NULL;
}

static void insert(uint64_t id)
{
    struct session *s = persistent_malloc(space, sizeof *s);
    if (s == NULL) {
        fprintf(stderr, "out of space\n");
        exit(1);
    }
    s->id = id;
    s->visits = 1;
    snprintf(s->user, sizeof s->user, "user-%06" PRIu64, id);
    s->check = check_of(s);
    _Atomic persistent_offset_t *b = &table->bucket[hash(id) % N_BUCKETS];
    persistent_offset_t head = atomic_load(b);
    do
        atomic_store(&s->next, head);
    while (!atomic_compare_exchange_weak(b, &head, ptr_to_persistent_offset(space, s)));
    atomic_fetch_add(&table->count, 1);
}

struct job {
    int first_run;
    uint64_t from, to;
    uint64_t bad;
};

static void *work(void *arg)
{
    struct job *j = arg;
    for (uint64_t id = j->from; id < j->to; id++) {
        if (j->first_run) {
            insert(id);
            continue;
        }
        struct session *s = lookup(id);
        if (s == NULL || s->check != check_of(s)) {
            j->bad++;
            continue;
        }
        s->visits++;                 /* each id belongs to one thread */
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE   (run it twice)\n", argv[0]);
        return 2;
    }
    space = create_persistent_allocator(argv[1], 8u << 20);
    if (space == NULL) {
        fprintf(stderr, "%s: %s\n", argv[1], persistent_errormsg());
        return 1;
    }
    bool created;
    table = persistent_root_get(space, ROOT_TAG, sizeof *table, &created);
    if (table == NULL) {
        fprintf(stderr, "cannot get the table: %s\n", persistent_errormsg());
        return 1;
    }
    if (created)
        table->created = (uint64_t)time(NULL);
    uint64_t run = atomic_fetch_add(&table->runs, 1) + 1;
    int first = atomic_load(&table->count) == 0;

    pthread_t th[N_THREADS];
    struct job jobs[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        jobs[i] = (struct job){first, (uint64_t)i * N_SESSIONS / N_THREADS,
                               (uint64_t)(i + 1) * N_SESSIONS / N_THREADS, 0};
        pthread_create(&th[i], NULL, work, &jobs[i]);
    }
    uint64_t bad = 0;
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        bad += jobs[i].bad;
    }

    struct persistent_stats st;
    persistent_stats_get(space, &st);
    if (first) {
        printf("run %" PRIu64 ": %d threads stored %" PRIu64 " sessions in %s "
               "(%.1f KiB live, file %.1f MiB)\n", run, N_THREADS,
               atomic_load(&table->count), argv[1], st.live_bytes / 1024.0,
               st.file_size / 1048576.0);
        printf("        run me again: the next run finds and verifies them.\n");
    } else {
        struct session *s = lookup(4242);
        printf("run %" PRIu64 ": found the table made %" PRIu64 " s ago; verified "
               "%" PRIu64 " of %" PRIu64 " sessions (%" PRIu64 " bad); "
               "%s has now been seen %" PRIu64 " times\n",
               run, (uint64_t)time(NULL) - table->created,
               (uint64_t)N_SESSIONS - bad, atomic_load(&table->count), bad,
               s ? s->user : "?", s ? s->visits : 0);
    }
    struct persistent_check_report rep;
    int rc = persistent_check(space, &rep);
    destroy_persistent_allocator(space);
    if (rc != 0 || bad != 0) {
        fprintf(stderr, "FAILED: %s\n", rc ? rep.first_error : "sessions lost");
        return 1;
    }
    return 0;
}

/* A reader in another process checks a space while the writer changes it
 * (issue 10, defect 4: "check never reports a healthy space as corrupt").
 *
 * Two writer threads allocate and free blocks of every size, growing the
 * space, and create and remove roots; a read-only opener in a forked
 * process runs persistent_check in a loop meanwhile.  A pass may read a
 * step of the writer half done (a run the writer is carving, pages it
 * just added); check must not call that damage.  (One pass alone did, in
 * about 0.2% of checks; check now looks again before it reports.)  The
 * writer's own check at the end must be clean too.
 *
 * A third writer thread runs transactions all along (a slot snapshotted,
 * a block freed and one allocated in it, most committed, some aborted), so
 * the reader's checks find transactions open: a check judges a view of a
 * space with a transaction to roll back after that rollback, but never a
 * live writer's (a review found the trial reading the writer's log as it
 * changed, and a check crashing on a copy far out of range). */
#include "check.h"

#include <pthread.h>

static allocator_space_t *S;
static _Atomic int stop;

static void *writer(void *arg)
{
    uint64_t seed = (uintptr_t)arg + 1;
    enum { N = 4096 };
    void **b = calloc(N, sizeof *b);
    REQUIRE(b != NULL);
    while (!stop) {
        int i = (int)(t_rand(&seed) % N);
        if (b[i]) {
            persistent_free(S, b[i]);
            b[i] = NULL;
        } else {
            b[i] = persistent_malloc(S, 1 + t_rand(&seed) %
                                             (t_rand(&seed) % 10 == 0 ? 100000 : 2000));
        }
        if (t_rand(&seed) % 50 == 0) {
            uint64_t tag = 1000 + t_rand(&seed) % 64;
            if (t_rand(&seed) & 1)
                (void)persistent_root_get(S, tag, 64 + t_rand(&seed) % 3000, NULL);
            else
                (void)persistent_root_remove(S, tag);
        }
    }
    for (int i = 0; i < N; i++)
        persistent_free(S, b[i]);
    free(b);
    return NULL;
}

static void *tx_writer(void *arg)
{
    (void)arg;
    uint64_t seed = 77;
    uint64_t *slots = persistent_root_get(S, 999, 64 * sizeof *slots, NULL);
    REQUIRE(slots != NULL);
    while (!stop) {
        uint64_t i = t_rand(&seed) % 64;
        REQUIRE(persistent_tx_begin(S) == 0);
        REQUIRE(persistent_tx_add(S, &slots[i], sizeof slots[i]) == 0);
        char *n = persistent_tx_alloc(S, 16 + t_rand(&seed) % 3000);
        if (n != NULL) {
            memset(n, (int)i, 16);
            if (slots[i] != 0)
                REQUIRE(persistent_tx_free(S, persistent_offset_to_ptr(S, slots[i])) == 0);
            slots[i] = ptr_to_persistent_offset(S, n);
        }
        if (t_rand(&seed) % 8 == 0)
            REQUIRE(persistent_tx_abort(S) == 0);
        else
            REQUIRE(persistent_tx_commit(S) == 0);
    }
    return NULL;
}

int main(void)
{
    double scale = getenv("PM_STRESS_SCALE") ? atof(getenv("PM_STRESS_SCALE")) : 1.0;
    uint64_t run_ns = (uint64_t)(3e9 * (scale > 0 && scale < 1 ? scale : 1.0));
    const char *p = t_path("readcheck");
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_CREATE;
    o.size = 1u << 20;
    o.max_size = 1u << 30;
    REQUIRE(persistent_space_open(p, &o, &S) == 0);
    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        struct persistent_options r = {0};
        r.flags = PERSISTENT_OPEN_READONLY;
        allocator_space_t *s;
        if (persistent_space_open(p, &r, &s) != 0) {
            fprintf(stderr, "reader: cannot open: %s\n", persistent_errormsg());
            _exit(3);
        }
        struct persistent_options pv = {0};
        pv.flags = PERSISTENT_OPEN_PRIVATE | PERSISTENT_OPEN_NO_RECOVER;
        allocator_space_t *v;
        if (persistent_space_open(p, &pv, &v) != 0) {
            fprintf(stderr, "reader: cannot open privately: %s\n", persistent_errormsg());
            _exit(3);
        }
        int checks = 0, bad = 0, with_tx = 0;
        uint64_t t0 = t_now_ns();
        while (t_now_ns() - t0 < run_ns) {
            struct persistent_check_report rep;
            if (persistent_check(checks % 4 == 3 ? v : s, &rep) != 0 && bad++ < 5)
                fprintf(stderr, "reader: healthy space called corrupt: %s\n",
                        rep.first_error);
            with_tx += rep.open_transactions != 0;
            checks++;
        }
        persistent_space_close(v);
        struct persistent_info in;
        persistent_space_info(s, &in);
        printf("reader: %d checks while the writer worked (%d with a transaction open), "
               "%d called it corrupt; followed it to %llu KiB\n", checks, with_tx, bad,
               (unsigned long long)in.capacity >> 10);
        fflush(stdout);
        _exit(bad ? 1 : 0);
    }
    close(pfd[1]);
    pthread_t t[3];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, writer, (void *)(uintptr_t)i);
    pthread_create(&t[2], NULL, tx_writer, NULL);
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    stop = 1;
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    t_check_clean(S, "writer, at the end");
    REQUIRE(persistent_space_close(S) == 0);
    unlink(p);
    return t_done();
}

/* A thread stopped at a random instruction, and a reader's check meanwhile
 * (G1, G2 and G8 together: "check never reports a healthy space as
 * corrupt").
 *
 * A worker thread runs every kind of operation on a growable space:
 * malloc and free of small and large blocks, realloc, roots created and
 * removed, the publishing calls, transactions (snapshots, allocations,
 * frees; committed and aborted) and automatic ones.  At random moments
 * the main thread sends it a signal whose handler blocks until released:
 * the worker is stopped wherever it was, in the middle of any step of any
 * of those.  While it is stopped, a reader in another process (forked
 * before the worker started, so that a glibc lock the stopped worker may
 * hold is not its problem) checks its read-only view of the space, which
 * holds still meanwhile.  What the stopped worker leaves is what a kill at
 * that instruction would leave, so the check must find no error.  Then
 * the worker goes on.  At the end the writer's own check is clean, and so
 * is the check after a reopen. */
#include "check.h"

#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

static allocator_space_t *S;
static _Atomic int parked;            /* 1 while the worker is stopped */
static _Atomic int release_worker;
static _Atomic int stop;
static _Atomic uint64_t worker_ops;
static _Atomic int auto_ok;           /* the other thread has ended */

static void stop_handler(int sig)
{
    (void)sig;
    atomic_store(&parked, 1);
    struct timespec ts = {0, 100000};
    while (!atomic_load(&release_worker))
        nanosleep(&ts, NULL);       /* async-signal-safe */
    atomic_store(&parked, 0);
}

enum { NB = 512, NTX = 32 };

struct rec {
    persistent_offset_t slot[NTX];      /* transactions' blocks */
    persistent_offset_t pub[64];        /* publishing calls' blocks */
};

static void fill(void *p, size_t n, uint64_t seed)
{
    unsigned char *c = p;
    for (size_t i = 0; i < n && i < 64; i++)
        c[i] = (unsigned char)(seed + i);
}

/* Ends the calling thread's transaction: aborted one time in four. */
static void tx_end(uint64_t x)
{
    if ((x >> 48) % 4 == 0)
        REQUIRE(persistent_tx_abort(S) == 0);
    else
        REQUIRE(persistent_tx_commit(S) == 0);
}

/* Another thread: plain allocations, frees and roots, each block filled
 * and checked before it is freed, and transactions of its own.  It stops
 * between two operations while the reader checks (so that the view holds
 * still), and must then make progress while the worker is stopped (G1,
 * and G7: transactions never wait for each other). */
static _Atomic int pause_other, other_paused, stop_other;
static _Atomic uint64_t other_ops;
static _Atomic int other_at;          /* the call it is in (enum other_call) */
enum other_call { IN_NONE, IN_TX, IN_FREE, IN_ROOT_REMOVE, IN_MALLOC, IN_ROOT_GET };
static const char *const call_names[] = {"none", "transaction", "free", "root remove",
                                         "malloc", "root get"};

/* Where the other thread is, when it is held up: its stack on stderr
 * (backtrace was called once before, so that it loads nothing here). */
static void where_handler(int sig)
{
    (void)sig;
    void *pc[64];
    int n = backtrace(pc, 64);
    backtrace_symbols_fd(pc, n, 2);
}

static void *other(void *arg)
{
    (void)arg;
    enum { N = 256 };
    static struct {
        unsigned char *p;
        size_t n;
    } b[N];
    uint64_t seed = 1234;
    persistent_offset_t *mine = persistent_root_get(S, 8, 16 * sizeof *mine, NULL);
    REQUIRE(mine != NULL);
    while (!atomic_load(&stop_other)) {
        if (atomic_load(&pause_other)) {
            atomic_store(&other_paused, 1);
            while (atomic_load(&pause_other) && !atomic_load(&stop_other))
                sched_yield();
            atomic_store(&other_paused, 0);
        }
        uint64_t x = t_rand(&seed);
        int i = (int)(x % N);
        if ((x >> 56) % 8 == 0) {
            /* a transaction of its own: never waits for the worker's */
            atomic_store(&other_at, IN_TX);
            persistent_offset_t *d = &mine[(x >> 40) % 16];
            REQUIRE(persistent_tx_begin(S) == 0);
            REQUIRE(persistent_tx_add(S, d, sizeof *d) == 0);
            void *q = persistent_tx_alloc(S, 1 + (x >> 20) % 2000);
            if (q != NULL) {
                if (*d != 0)
                    REQUIRE(persistent_tx_free(S, persistent_offset_to_ptr(S, *d)) == 0);
                *d = ptr_to_persistent_offset(S, q);
            }
            tx_end(x >> 16);
        } else if (b[i].p != NULL) {
            for (size_t j = 0; j < b[i].n; j++)
                REQUIRE(b[i].p[j] == (unsigned char)(i + j));
            if ((x >> 16) % 4 == 0) {
                atomic_store(&other_at, IN_ROOT_REMOVE);
                (void)persistent_root_remove(S, 200 + (uint64_t)i % 8);
            }
            atomic_store(&other_at, IN_FREE);
            persistent_free(S, b[i].p);
            b[i].p = NULL;
        } else {
            size_t n = (x >> 20) % 16 == 0 ? 5000 + (x >> 32) % 100000 : 1 + (x >> 32) % 1000;
            atomic_store(&other_at, IN_MALLOC);
            b[i].p = persistent_malloc(S, n);
            if (b[i].p != NULL) {
                b[i].n = n < 256 ? n : 256;
                for (size_t j = 0; j < b[i].n; j++)
                    b[i].p[j] = (unsigned char)(i + j);
            }
            if ((x >> 16) % 4 == 0) {
                atomic_store(&other_at, IN_ROOT_GET);
                (void)persistent_root_get(S, 200 + (uint64_t)i % 8, 64, NULL);
            }
        }
        atomic_store(&other_at, IN_NONE);
        atomic_fetch_add(&other_ops, 1);
    }
    for (int i = 0; i < N; i++)
        persistent_free(S, b[i].p);
    return NULL;
}

static void *worker(void *arg)
{
    (void)arg;
    uint64_t seed = 99;
    void **b = calloc(NB, sizeof *b);
    REQUIRE(b != NULL);
    struct rec *r = persistent_root_get(S, 7, sizeof *r, NULL);
    REQUIRE(r != NULL);
    while (!atomic_load(&stop)) {
        uint64_t x = t_rand(&seed);
        int i = (int)(x % NB);
        switch ((x >> 16) % 11) {
        case 0: case 1: case 2:
            if (b[i] != NULL) {
                persistent_free(S, b[i]);
                b[i] = NULL;
            } else {
                size_t n = (x >> 24) % 8 == 0 ? 4096 + (x >> 32) % 200000
                                               : 1 + (x >> 32) % 3000;
                b[i] = persistent_malloc(S, n);
                if (b[i] != NULL)
                    fill(b[i], n, x);
            }
            break;
        case 3:
            if (b[i] != NULL) {
                void *q = b[i];
                size_t n = 1 + (x >> 32) % ((x >> 24) % 4 == 0 ? 100000 : 2000);
                if (persistent_realloc(S, q, n))
                    b[i] = q;
            }
            break;
        case 4: {
            uint64_t tag = 100 + (x >> 32) % 16;
            if ((x >> 24) & 1)
                (void)persistent_root_get(S, tag, 16 + (x >> 40) % 5000, NULL);
            else
                (void)persistent_root_remove(S, tag);
            break;
        }
        case 5: case 6: {
            persistent_offset_t *d = &r->pub[(x >> 32) % 64];
            size_t n = 1 + (x >> 40) % ((x >> 24) % 5 == 0 ? 70000 : 1500);
            if (*d == 0)
                (void)persistent_alloc_into(S, d, n);
            else if ((x >> 24) & 1)
                (void)persistent_free_from(S, d);
            else
                (void)persistent_realloc_into(S, d, n);
            break;
        }
        case 10: {
            /* now and then (each costs a protection change of the space,
             * hundreds of plain ones) an automatic transaction: plain
             * writes, plain malloc and free */
            if ((x >> 8) % 32 != 0 || !atomic_load(&auto_ok))
                break;
            int k = (int)((x >> 32) % NTX);
            REQUIRE(persistent_tx_begin_auto(S) == 0);
            char *p = persistent_malloc(S, 16 + (x >> 40) % 3000);
            if (p != NULL) {
                fill(p, 16, x);
                if (r->slot[k] != 0)
                    persistent_free(S, persistent_offset_to_ptr(S, r->slot[k]));
                r->slot[k] = ptr_to_persistent_offset(S, p);
            }
            tx_end(x);
            break;
        }
        default: {
            int k = (int)((x >> 32) % NTX);
            REQUIRE(persistent_tx_begin(S) == 0);
            REQUIRE(persistent_tx_add(S, &r->slot[k], sizeof r->slot[k]) == 0);
            size_t n = 16 + (x >> 40) % ((x >> 24) % 6 == 0 ? 50000 : 2000);
            char *p = persistent_tx_alloc(S, n);
            if (p != NULL) {
                fill(p, n, x);
                if (r->slot[k] != 0)
                    REQUIRE(persistent_tx_free(S, persistent_offset_to_ptr(S, r->slot[k])) == 0);
                r->slot[k] = ptr_to_persistent_offset(S, p);
            }
            tx_end(x);
            break;
        }
        }
        atomic_fetch_add(&worker_ops, 1);
    }
    for (int j = 0; j < NB; j++)
        persistent_free(S, b[j]);
    free(b);
    return NULL;
}

/* The reader: a read-only view, checked on every byte from the pipe. */
static void reader(const char *p, int in, int out)
{
    struct persistent_options o = {0};
    o.flags = PERSISTENT_OPEN_READONLY;
    allocator_space_t *v;
    if (persistent_space_open(p, &o, &v) != 0) {
        fprintf(stderr, "reader: cannot open: %s\n", persistent_errormsg());
        _exit(3);
    }
    char c;
    int bad = 0;
    while (read(in, &c, 1) == 1) {
        struct persistent_check_report rep;
        int r = persistent_check(v, &rep);
        if (r != 0 && bad++ < 5)
            fprintf(stderr, "reader: check of a space whose writer is stopped: %d %s\n",
                    r, rep.first_error);
        c = r == 0 ? 'y' : 'n';
        if (write(out, &c, 1) != 1)
            _exit(4);
    }
    persistent_space_close(v);
    _exit(bad ? 1 : 0);
}

int main(void)
{
    double scale = getenv("PM_STRESS_SCALE") ? atof(getenv("PM_STRESS_SCALE")) : 1.0;
    int stops = (int)(1500 * (scale > 0 && scale < 1 ? scale : 1.0));
    const char *p = t_path("parkcheck");
    S = t_create(p, 256u << 10, 1u << 30);
    REQUIRE(persistent_root_get(S, 7, sizeof(struct rec), NULL) != NULL);
    int to_reader[2], from_reader[2];
    REQUIRE(pipe(to_reader) == 0 && pipe(from_reader) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(to_reader[1]);
        close(from_reader[0]);
        reader(p, to_reader[0], from_reader[1]);
    }
    close(to_reader[0]);
    close(from_reader[1]);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = stop_handler;
    sigemptyset(&sa.sa_mask);
    REQUIRE(sigaction(SIGUSR1, &sa, NULL) == 0);
    /* diagnostics: a thread's stack on SIGUSR2 (and the handler may run
     * inside the stop handler: SIGUSR2 is not blocked there) */
    void *pc[4];
    (void)backtrace(pc, 4);
    sa.sa_handler = where_handler;
    REQUIRE(sigaction(SIGUSR2, &sa, NULL) == 0);
    pthread_t w, ot;
    REQUIRE(pthread_create(&w, NULL, worker, NULL) == 0);
    REQUIRE(pthread_create(&ot, NULL, other, NULL) == 0);

    /* from here on the main thread calls nothing that may take a lock the
     * stopped worker holds: signals, atomics, nanosleep, pipes */
    uint64_t seed = 5;
    int bad = 0, done = 0, stuck = 0;
    for (int i = 0; i < stops; i++) {
        if (i == stops / 2) {
            /* the second half: the worker alone, automatic transactions
             * too (which other threads must keep away from) */
            atomic_store(&stop_other, 1);
            pthread_join(ot, NULL);
            atomic_store(&auto_ok, 1);
        }
        struct timespec ts = {0, (long)(t_rand(&seed) % 300000)};
        nanosleep(&ts, NULL);
        bool with_other = i < stops / 2;
        atomic_store(&pause_other, 1);
        while (with_other && !atomic_load(&other_paused))
            sched_yield();
        atomic_store(&release_worker, 0);
        REQUIRE(pthread_kill(w, SIGUSR1) == 0);
        while (!atomic_load(&parked))
            sched_yield();
        char c = 'c';
        REQUIRE(write(to_reader[1], &c, 1) == 1);
        REQUIRE(read(from_reader[0], &c, 1) == 1);
        bad += c != 'y';
        done++;
        /* the other thread goes on while the worker stays stopped */
        uint64_t before = atomic_load(&other_ops), t0 = t_now_ns();
        atomic_store(&pause_other, 0);
        while (with_other && atomic_load(&other_ops) < before + 100 &&
               t_now_ns() - t0 < 10000000000ull)
            sched_yield();
        if (with_other && atomic_load(&other_ops) < before + 100 && stuck++ < 1) {
            fprintf(stderr, "the other thread made %llu operations in 10 s while the "
                    "worker was stopped; it is in: %s; its stack:\n",
                    (unsigned long long)(atomic_load(&other_ops) - before),
                    call_names[atomic_load(&other_at)]);
            REQUIRE(pthread_kill(ot, SIGUSR2) == 0);
            nanosleep(&(struct timespec){0, 200000000}, NULL);
            fprintf(stderr, "and the worker's (where it was stopped):\n");
            REQUIRE(pthread_kill(w, SIGUSR2) == 0);
            nanosleep(&(struct timespec){0, 200000000}, NULL);
        }
        atomic_store(&release_worker, 1);
        while (atomic_load(&parked))
            sched_yield();
    }
    atomic_store(&stop, 1);
    pthread_join(w, NULL);
    close(to_reader[1]);
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    printf("%d stops of the worker (%llu operations; the other thread %llu), %d checks "
           "called the space damaged, %d times the other thread was held up\n", done,
           (unsigned long long)atomic_load(&worker_ops),
           (unsigned long long)atomic_load(&other_ops), bad, stuck);
    CHECK_EQ(bad, 0);
    CHECK_EQ(stuck, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    t_check_clean(S, "writer, at the end");
    REQUIRE(persistent_space_close(S) == 0);
    struct persistent_options o = {0};
    allocator_space_t *s;
    REQUIRE(persistent_space_open(p, &o, &s) == 0);
    t_check_clean(s, "after a reopen");
    REQUIRE(persistent_space_close(s) == 0);
    unlink(p);
    return t_done();
}

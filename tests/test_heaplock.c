/* A thread stopped inside the C library's malloc holds up nobody's calls
 * on the space (G1) and nobody's transactions (G7).
 *
 * A C library's malloc may take a lock: a sanitizer's allocator does,
 * glibc's arenas may.  This program is linked with the C allocator's
 * functions wrapped (-Wl,--wrap, for this program's and the library's
 * objects): each call takes one lock around the real one, as such a
 * malloc would, and a thread asked to stops inside it, holding the lock,
 * as a thread stopped by a signal or a debugger there would.  While one
 * is stopped so, a thread that never used the space before runs every
 * kind of call on it: plain allocations of each size, realloc, roots, the
 * publishing calls, transactions large enough that all their lists grow
 * (snapshots, allocations, frees; committed, aborted, nested), an
 * automatic transaction, and its exit.  It must finish: a library that
 * kept a transaction's lists in the C heap waited for the stopped thread
 * at its first begin.
 *
 * And a thread's first call does not wait for another's stopped inside
 * pthread_key_create (wrapped the same way), which a key made at the
 * first call under pthread_once did; and a record taken as an orphan (a
 * failed pthread_setspecific, wrapped) goes back once, after its thread;
 * and the process's first automatic transaction, stopped inside sigaction
 * (wrapped), does not hold up another thread's begin.
 *
 * Opening and closing may serialise (G1 leaves them out): both happen
 * while no thread is stopped.
 *
 * And strerror (wrapped, counted) is never called: it translates under
 * the locale lock, which setlocale holds while it allocates, so a program
 * whose malloc is the library's (the LD_PRELOAD interposer) and whose
 * space could not be opened hung on the message (bash under a file size
 * limit; a helper's hunt). */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void __wrap_free(void *p);
int __real_pthread_key_create(pthread_key_t *key, void (*fn)(void *));
int __wrap_pthread_key_create(pthread_key_t *key, void (*fn)(void *));
int __real_pthread_setspecific(pthread_key_t key, const void *v);
int __wrap_pthread_setspecific(pthread_key_t key, const void *v);
int __real_sigaction(int sig, const struct sigaction *sa, struct sigaction *old);
int __wrap_sigaction(int sig, const struct sigaction *sa, struct sigaction *old);
char *__real_strerror(int e);
char *__wrap_strerror(int e);

static atomic_int strerror_calls;

char *__wrap_strerror(int e)
{
    atomic_fetch_add(&strerror_calls, 1);
    return __real_strerror(e);
}

/* The library's words for system errors are the C locale's, with no call
 * to strerror: an open that fails, and the calls that name errors. */
static void test_no_strerror(void)
{
    struct persistent_options o = {0};
    allocator_space_t *s = NULL;
    CHECK(persistent_space_open(t_path("heaplock-absent"), &o, &s) == -ENOENT);
    CHECK(strstr(persistent_errormsg(), "No such file or directory") != NULL);
    static const int errs[] = {ENOENT, ENOSPC, EFBIG, ENOMEM, EACCES, EMFILE, EROFS, EBUSY};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        int before = atomic_load(&strerror_calls);
        const char *mine = persistent_strerror(-errs[i]);
        const char *theirs = __real_strerror(errs[i]);      /* not counted */
        CHECK(strcmp(mine, theirs) == 0);
        CHECK_EQ(atomic_load(&strerror_calls), before);
    }
    CHECK(strcmp(persistent_strerror(-4000), "Unknown error 4000") == 0);
    CHECK_EQ(atomic_load(&strerror_calls), 0);
}

static void nap_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int stop_inside;          /* the next malloc call stops */
static _Atomic int stopped, go_on;
static _Atomic long calls;               /* wrapped calls, by anyone */

static void heap_enter(void)
{
    pthread_mutex_lock(&heap_lock);
    atomic_fetch_add(&calls, 1);
    int one = 1;
    if (atomic_compare_exchange_strong(&stop_inside, &one, 0)) {
        atomic_store(&stopped, 1);
        while (!atomic_load(&go_on))
            nap_us(200);
    }
}

static void heap_leave(void)
{
    pthread_mutex_unlock(&heap_lock);
}

void *__wrap_malloc(size_t n)
{
    heap_enter();
    void *p = __real_malloc(n);
    heap_leave();
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    heap_enter();
    void *p = __real_calloc(n, size);
    heap_leave();
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    heap_enter();
    void *q = __real_realloc(p, n);
    heap_leave();
    return q;
}

void __wrap_free(void *p)
{
    heap_enter();
    __real_free(p);
    heap_leave();
}

/* A thread stopped inside pthread_key_create (which the library may call
 * for its threads' exit destructor): the same stop, no lock needed. */
static _Atomic int stop_in_key, stopped_in_key, key_go_on;

/* The key made when the library is loaded fails (this program's
 * constructor runs first and arms it), so that the library makes it at a
 * thread's first call (as when a program's constructor calls in first):
 * the path where one thread makes it while others find it being made. */
static _Atomic int fail_key_create;

__attribute__((constructor(101))) static void fail_the_load_key(void)
{
    atomic_store(&fail_key_create, 1);
}

int __wrap_pthread_key_create(pthread_key_t *key, void (*fn)(void *))
{
    int one = 1;
    if (atomic_compare_exchange_strong(&fail_key_create, &one, 0))
        return EAGAIN;
    one = 1;
    if (atomic_compare_exchange_strong(&stop_in_key, &one, 0)) {
        atomic_store(&stopped_in_key, 1);
        while (!atomic_load(&key_go_on))
            nap_us(200);
    }
    return __real_pthread_key_create(key, fn);
}

/* The calling thread's next pthread_setspecific fails (as glibc's may,
 * out of memory, for a key past its first 32). */
static _Thread_local bool fail_setspecific;

int __wrap_pthread_setspecific(pthread_key_t key, const void *v)
{
    if (fail_setspecific) {
        fail_setspecific = false;
        return ENOMEM;
    }
    return __real_pthread_setspecific(key, v);
}

/* A thread stopped inside sigaction (which an automatic transaction's
 * first begin in the process calls to catch writes). */
static _Atomic int stop_in_sigaction, stopped_in_sigaction, sigaction_go_on;
static _Atomic int fail_sigaction;      /* the next call fails */

int __wrap_sigaction(int sig, const struct sigaction *sa, struct sigaction *old)
{
    int one = 1;
    if (atomic_compare_exchange_strong(&fail_sigaction, &one, 0)) {
        errno = EINVAL;
        return -1;
    }
    one = 1;
    if (atomic_compare_exchange_strong(&stop_in_sigaction, &one, 0)) {
        atomic_store(&stopped_in_sigaction, 1);
        while (!atomic_load(&sigaction_go_on))
            nap_us(200);
    }
    return __real_sigaction(sig, sa, old);
}

static allocator_space_t *S;
static _Atomic int done;

/* A block's pattern (kept by realloc: not derived from its address). */
static void pat(void *p, size_t n, uint64_t g)
{
    for (size_t i = 0; i < n; i++)
        ((unsigned char *)p)[i] = (unsigned char)(g * 31 + i);
}

static bool pat_ok(const void *p, size_t n, uint64_t g)
{
    for (size_t i = 0; i < n; i++)
        if (((const unsigned char *)p)[i] != (unsigned char)(g * 31 + i))
            return false;
    return true;
}

/* Stops inside malloc until released. */
static void *staller(void *arg)
{
    (void)arg;
    atomic_store(&stop_inside, 1);
    void *volatile p = malloc(100);     /* volatile: a pair gcc would drop */
    free(p);
    return NULL;
}

struct rec {
    persistent_offset_t slot[400];
    persistent_offset_t pub[8];
    uint64_t word[600];
};

/* One transaction of n snapshots, n allocations and n frees of the
 * blocks the last one made (all its lists grow past their first room,
 * and the blocks past the count that indexes them); aborted when abort,
 * and then nothing of it stays. */
static void big_tx(struct rec *r, int n, uint64_t gen, bool abort)
{
    uint64_t before[600];
    memcpy(before, r->word, sizeof before);
    persistent_offset_t old[400];
    memcpy(old, r->slot, sizeof old);
    REQUIRE(persistent_tx_begin(S) == 0);
    REQUIRE(persistent_tx_begin(S) == 0);       /* nested: one transaction */
    for (int i = 0; i < n; i++) {
        REQUIRE(persistent_tx_add(S, &r->word[i], sizeof r->word[i]) == 0);
        r->word[i] = gen + (uint64_t)i;
    }
    REQUIRE(persistent_tx_add(S, r->slot, sizeof r->slot) == 0);
    for (int i = 0; i < n && i < 400; i++) {
        unsigned char *p = persistent_tx_alloc(S, 16 + (size_t)(i * 37) % 3000);
        REQUIRE(p != NULL);
        pat(p, 16, gen + (uint64_t)i);
        if (r->slot[i] != 0)
            REQUIRE(persistent_tx_free(S, persistent_offset_to_ptr(S, r->slot[i])) == 0);
        r->slot[i] = ptr_to_persistent_offset(S, p);
    }
    REQUIRE(persistent_tx_commit(S) == 0);
    if (abort) {
        REQUIRE(persistent_tx_abort(S) == 0);
        CHECK(memcmp(before, r->word, sizeof before) == 0);
        CHECK(memcmp(old, r->slot, sizeof old) == 0);
    } else {
        REQUIRE(persistent_tx_commit(S) == 0);
        for (int i = 0; i < n && i < 400; i++)
            CHECK(pat_ok(persistent_offset_to_ptr(S, r->slot[i]), 16, gen + (uint64_t)i));
    }
}

/* A thread new to the space, while another is stopped inside malloc. */
static void *newcomer(void *arg)
{
    (void)arg;
    struct rec *r = persistent_root_get(S, 7, sizeof *r, NULL);
    REQUIRE(r != NULL);
    /* plain calls: every size of block, realloc, roots, publishing */
    void *b[64];
    for (int i = 0; i < 64; i++) {
        size_t n = i % 8 == 7 ? 100000 + (size_t)i * 4096 : 1 + (size_t)i * 61;
        b[i] = i % 3 == 0 ? persistent_calloc(S, 1, n) : persistent_malloc(S, n);
        REQUIRE(b[i] != NULL);
        pat(b[i], n < 64 ? n : 64, (uint64_t)i);
    }
    for (int i = 0; i < 64; i += 2)
        REQUIRE(persistent_realloc(S, b[i], 5000 + (size_t)i));
    for (int i = 0; i < 64; i++) {
        size_t n = i % 8 == 7 ? 100000 + (size_t)i * 4096 : 1 + (size_t)i * 61;
        CHECK(pat_ok(b[i], n < 64 ? n : 64, (uint64_t)i));
        persistent_free(S, b[i]);
    }
    void *a = persistent_aligned_alloc(S, 4096, 10000);
    REQUIRE(a != NULL && (uintptr_t)a % 4096 == 0);
    persistent_free(S, a);
    REQUIRE(persistent_root_get(S, 300, 200, NULL) != NULL);
    REQUIRE(persistent_root_remove(S, 300) == 0);
    for (int i = 0; i < 8; i++) {
        REQUIRE(persistent_alloc_into(S, &r->pub[i], 100 + (size_t)i * 1000) == 0);
        REQUIRE(persistent_realloc_into(S, &r->pub[i], 9000) == 0);
    }
    for (int i = 0; i < 8; i++)
        REQUIRE(persistent_free_from(S, &r->pub[i]) == 0);
    /* transactions whose lists all grow, committed and aborted */
    big_tx(r, 500, 1000, false);
    big_tx(r, 500, 2000, true);
    big_tx(r, 40, 3000, false);
    big_tx(r, 500, 4000, false);
    /* an automatic one: plain writes and calls, rolled back */
    uint64_t w0 = r->word[0];
    REQUIRE(persistent_tx_begin_auto(S) == 0);
    r->word[0] = 77;
    void *q = persistent_malloc(S, 300);
    REQUIRE(q != NULL);
    REQUIRE(persistent_tx_abort(S) == 0);
    CHECK_EQ(r->word[0], w0);
    atomic_store(&done, 1);
    return NULL;                        /* its exit hands its record back
                                           (and lets its lists go) */
}

/* A thread's first call on the space (a malloc and a free). */
static _Atomic int first_calls;

static void *first_call(void *arg)
{
    (void)arg;
    void *q = persistent_malloc(S, 100);
    REQUIRE(q != NULL);
    persistent_free(S, q);
    atomic_fetch_add(&first_calls, 1);
    return NULL;
}

/* Whether the calling thread's record of space sp is an orphan. */
static bool my_record_orphan(allocator_space_t *sp)
{
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(sp, &rt);
    REQUIRE(rec != NULL);
    return pm_load_acquire(&rec->orphan_tid) != 0;
}

/* Two threads' first calls, the first stopped inside pthread_key_create
 * (the key not made at load): the second must not wait for it (a key made
 * at a thread's first call under pthread_once made it wait); it takes its
 * record as an orphan.  And a fork meanwhile: the child, whose threads
 * make no key, makes it again at its first call instead of taking every
 * record as an orphan. */
static void test_first_calls(void)
{
    const char *child_path = t_path("heaplock-child");
    atomic_store(&stop_in_key, 1);
    pthread_t a, b;
    REQUIRE(pthread_create(&a, NULL, first_call, NULL) == 0);
    uint64_t t0 = t_now_ns();
    while (!atomic_load(&stopped_in_key) && t_now_ns() - t0 < 10000000000ull)
        nap_us(100);
    REQUIRE(atomic_load(&stopped_in_key));
    REQUIRE(pthread_create(&b, NULL, first_call, NULL) == 0);
    t0 = t_now_ns();
    while (atomic_load(&first_calls) < 1 && t_now_ns() - t0 < 10000000000ull)
        nap_us(1000);
    int n = atomic_load(&first_calls);
    if (n < 1)
        fprintf(stderr, "a thread's first call waited 10 s for another stopped inside "
                        "pthread_key_create\n");
    CHECK_EQ(n, 1);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        allocator_space_t *c = t_create(child_path, 1u << 20, 16u << 20);
        void *q = persistent_malloc(c, 10);
        int bad = q == NULL ? 3 : my_record_orphan(c) ? 4 : 0;
        persistent_free(c, q);
        (void)persistent_space_close(c);
        _exit(bad);
    }
    CHECK(t_child_ok(pid, "fork while the key was being made (4: its record an orphan)"));
    atomic_store(&stop_in_key, 0);
    atomic_store(&key_go_on, 1);
    REQUIRE(pthread_join(a, NULL) == 0);
    REQUIRE(pthread_join(b, NULL) == 0);
    CHECK_EQ(atomic_load(&first_calls), 2);
    CHECK(!my_record_orphan(S));        /* the key is made now */
}

/* Records of S taken as orphans, and of those, how many are free. */
static void orphans(int *n, int *free_ones)
{
    struct pm_rt *rt = pm_rt_of(S);
    *n = *free_ones = 0;
    uint32_t k = pm_load_acquire(&rt->n_recs);
    for (uint32_t id = 1; id <= k && id < PM_MAX_RECS; id++)
        if (pm_load_acquire(&rt->recs[id].orphan_tid) != 0) {
            (*n)++;
            *free_ones += pm_load_acquire(&rt->recs[id].in_use) == 0;
        }
}

static allocator_space_t *S2;

/* Its record of S an orphan (setspecific failed), then one of S2 with
 * the exit destructor armed; its record's id and its kernel id out. */
static _Atomic uint32_t orphan_id, orphan_tid_of;

static void *orphan_then_other(void *arg)
{
    (void)arg;
    fail_setspecific = true;
    void *q = persistent_malloc(S, 100);
    REQUIRE(q != NULL);
    persistent_free(S, q);
    struct pm_rt *rt;
    struct pm_trec *rec = pm_thread_rec(S, &rt);
    REQUIRE(rec != NULL && pm_load_acquire(&rec->orphan_tid) != 0);
    atomic_store(&orphan_id, rec->id);
    atomic_store(&orphan_tid_of, os_thread_id());
    q = persistent_malloc(S2, 100);
    REQUIRE(q != NULL);
    persistent_free(S2, q);
    return NULL;
}

/* A thread whose record of one space is an orphan and which then armed
 * its exit destructor on another: the destructor leaves the orphan alone,
 * and once the thread is gone the next claim hands it back, once.  (A
 * review: released by the destructor too, it kept its tag, and a claim
 * after the thread was gone released it again under its next thread.) */
static void test_orphan_then_armed(void)
{
    S2 = t_create(t_path("heaplock2"), 1u << 20, 16u << 20);
    struct pm_rt *rt = pm_rt_of(S);
    int n, f;
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, orphan_then_other, NULL) == 0);
    REQUIRE(pthread_join(t, NULL) == 0);
    struct pm_trec *rec = &rt->recs[atomic_load(&orphan_id)];
    /* its orphan, still tagged and not free (its destructor left it) */
    CHECK(pm_load_acquire(&rec->orphan_tid) != 0);
    CHECK_EQ(pm_load_acquire(&rec->in_use), 1u);
    orphans(&n, &f);
    CHECK_EQ(f, 0);                     /* nothing free while tagged */
    /* once the thread is gone, a first call elsewhere hands the orphan
     * back (the next claim scans every record) */
    uint64_t t0 = t_now_ns();
    while (!os_thread_gone(atomic_load(&orphan_tid_of)) && t_now_ns() - t0 < 5000000000ull)
        nap_us(1000);
    atomic_store(&first_calls, 0);
    pthread_t u;
    REQUIRE(pthread_create(&u, NULL, first_call, NULL) == 0);
    REQUIRE(pthread_join(u, NULL) == 0);
    CHECK_EQ(pm_load_acquire(&rec->orphan_tid), 0u);
    orphans(&n, &f);
    CHECK_EQ(f, 0);
    t_check_clean(S, "after an orphan went back");
    REQUIRE(persistent_space_close(S2) == 0);
}

/* An automatic transaction begun and aborted at once; its begin's
 * result. */
static _Atomic int auto_results[2] = {1, 1};

static void *auto_once(void *arg)
{
    int i = (int)(intptr_t)arg;
    int r = persistent_tx_begin_auto(S);
    if (r == 0)
        REQUIRE(persistent_tx_abort(S) == 0);
    atomic_store(&auto_results[i], r);
    return NULL;
}

/* The process's first automatic transaction stopped inside sigaction
 * (installing the handler that catches writes): another thread's begin
 * does not wait for it (it used to spin until the handler was in): it
 * says -EBUSY, and begins once the first is done.  Before that, a failed
 * sigaction: the next begin installs it (it was taken as installed).
 * And a fork meanwhile: the child, where nobody is installing it, does
 * (it refused every begin). */
static void test_auto_first_install(void)
{
    atomic_store(&fail_sigaction, 1);
    CHECK_EQ(persistent_tx_begin_auto(S), -EINVAL);
    atomic_store(&stop_in_sigaction, 1);
    pthread_t a, b;
    REQUIRE(pthread_create(&a, NULL, auto_once, (void *)0) == 0);
    uint64_t t0 = t_now_ns();
    while (!atomic_load(&stopped_in_sigaction) && t_now_ns() - t0 < 10000000000ull)
        nap_us(100);
    REQUIRE(atomic_load(&stopped_in_sigaction));
    REQUIRE(pthread_create(&b, NULL, auto_once, (void *)1) == 0);
    t0 = t_now_ns();
    while (atomic_load(&auto_results[1]) == 1 && t_now_ns() - t0 < 10000000000ull)
        nap_us(1000);
    int rb = atomic_load(&auto_results[1]);
    if (rb == 1)
        fprintf(stderr, "an automatic transaction's begin waited 10 s for another "
                        "stopped inside sigaction\n");
    CHECK_EQ(rb, -EBUSY);
    const char *child_path = t_path("heaplock-auto-child");
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        allocator_space_t *c = t_create(child_path, 1u << 20, 16u << 20);
        int r = persistent_tx_begin_auto(c);
        if (r == 0)
            (void)persistent_tx_abort(c);
        (void)persistent_space_close(c);
        _exit(r == 0 ? 0 : 5);
    }
    CHECK(t_child_ok(pid, "fork while the handler was being installed (5: its begin refused)"));
    /* b has left (its record handed back) before a goes on: a begin
     * refuses while another thread is inside a call (b still waiting, on
     * a library that makes it wait, goes on once a has) */
    if (rb != 1)
        REQUIRE(pthread_join(b, NULL) == 0);
    atomic_store(&sigaction_go_on, 1);
    REQUIRE(pthread_join(a, NULL) == 0);
    if (rb == 1)
        REQUIRE(pthread_join(b, NULL) == 0);
    CHECK_EQ(atomic_load(&auto_results[0]), 0);
    atomic_store(&auto_results[1], 1);
    REQUIRE(pthread_create(&b, NULL, auto_once, (void *)1) == 0);
    REQUIRE(pthread_join(b, NULL) == 0);
    CHECK_EQ(atomic_load(&auto_results[1]), 0);
}

int main(void)
{
    const char *p = t_path("heaplock");
    /* a library that made no key at load (one under pthread_once at the
     * first call) must meet the stop, not the failure */
    atomic_store(&fail_key_create, 0);
    S = t_create(p, 1u << 20, 256u << 20);
    /* the wrapping works: the library's open called it */
    CHECK(atomic_load(&calls) > 0);
    test_first_calls();
    test_no_strerror();
    test_orphan_then_armed();
    test_auto_first_install();
    pthread_t st, nc;
    REQUIRE(pthread_create(&st, NULL, staller, NULL) == 0);
    while (!atomic_load(&stopped))
        nap_us(100);
    REQUIRE(pthread_create(&nc, NULL, newcomer, NULL) == 0);
    /* its exit too (a GNU call: the join with a deadline) */
    struct timespec until;
    REQUIRE(clock_gettime(CLOCK_REALTIME, &until) == 0);
    until.tv_sec += 20;
    int j = pthread_timedjoin_np(nc, NULL, &until);
    if (j != 0)
        fprintf(stderr, "a thread new to the space did not finish in 20 s while "
                        "another was stopped inside malloc\n");
    CHECK_EQ(j, 0);
    CHECK(atomic_load(&done));
    atomic_store(&go_on, 1);
    if (j != 0)
        REQUIRE(pthread_join(nc, NULL) == 0);
    REQUIRE(pthread_join(st, NULL) == 0);
    t_check_clean(S, "after the newcomer");
    REQUIRE(persistent_space_close(S) == 0);
    return t_done();
}

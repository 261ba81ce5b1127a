/* bank: money moves between accounts in transactions, from several threads
 * at once; whatever kills the process, the total never changes.
 *
 *   bank FILE [SECONDS [THREADS]]   run transfers (default 2 s, 4 threads)
 *   bank FILE check                 print the accounts' total and exit 0
 *                                   only if it is what the bank began with
 *
 * Every transfer is one transaction: both balances snapshotted and
 * changed, a receipt allocated in the transaction and linked into the
 * account's history, the oldest receipt of a full history freed in it.
 * Kill it at any moment (kill -9, a power failure on real persistent
 * memory) and run it again: the next open rolls back the transfer that was
 * in flight, and check finds the same total.  Each thread moves money
 * between its own accounts and a shared pool it takes turns on (a
 * transaction gives atomicity, not isolation: the pool has its own lock,
 * held across the transaction; the accounts are the thread's). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <persistent_mem.h>

#define TAG 0x62616e6b31ull
#define THREADS_MAX 16
#define ACCTS 32            /* per thread */
#define HIST 8              /* receipts kept per account */
#define START 1000

struct receipt {
    int64_t amount;
    uint64_t serial;
};

struct account {
    int64_t balance;
    uint32_t n_hist;
    uint32_t reserved;
    persistent_offset_t hist[HIST];   /* receipts, oldest first */
};

struct bank {
    uint64_t magic;
    uint32_t threads;
    uint32_t reserved;
    int64_t pool;
    uint64_t serial;
    struct account acct[THREADS_MAX][ACCTS];
};

static allocator_space_t *space;
static struct bank *bank;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stop;

static void die(const char *what)
{
    fprintf(stderr, "bank: %s: %s\n", what, persistent_errormsg());
    exit(1);
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Records a receipt for a (inside the transaction). */
static void note(struct account *a, int64_t amount)
{
    struct receipt *r = persistent_tx_alloc(space, sizeof *r);
    if (r == NULL)
        die("tx_alloc");
    r->amount = amount;
    r->serial = __atomic_add_fetch(&bank->serial, 1, __ATOMIC_RELAXED);
    if (persistent_tx_add(space, a, sizeof *a) != 0)
        die("tx_add");
    if (a->n_hist == HIST) {
        if (persistent_tx_free(space, persistent_offset_to_ptr(space, a->hist[0])) != 0)
            die("tx_free");
        memmove(&a->hist[0], &a->hist[1], (HIST - 1) * sizeof a->hist[0]);
        a->n_hist--;
    }
    a->hist[a->n_hist++] = ptr_to_persistent_offset(space, r);
}

static void move(int64_t *from, int64_t *to, int64_t amount, struct account *a,
                 struct account *b)
{
    if (persistent_tx_begin(space) != 0)
        die("tx_begin");
    if (persistent_tx_add(space, from, sizeof *from) != 0 ||
        persistent_tx_add(space, to, sizeof *to) != 0)
        die("tx_add");
    *from -= amount;
    *to += amount;
    if (a)
        note(a, -amount);
    if (b)
        note(b, amount);
    if (persistent_tx_commit(space) != 0)
        die("tx_commit");
}

static void *teller(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    uint64_t seed = (uint64_t)time(NULL) * 2654435761u + t + 1;
    struct account *mine = bank->acct[t];
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        int i = (int)(rnd(&seed) % ACCTS), j = (int)(rnd(&seed) % ACCTS);
        int64_t amount = (int64_t)(rnd(&seed) % 50);
        if (rnd(&seed) % 8 == 0) {
            /* with the shared pool, under its lock */
            pthread_mutex_lock(&pool_lock);
            if (rnd(&seed) & 1)
                move(&mine[i].balance, &bank->pool, amount, &mine[i], NULL);
            else
                move(&bank->pool, &mine[i].balance, amount, NULL, &mine[i]);
            pthread_mutex_unlock(&pool_lock);
        } else {
            move(&mine[i].balance, &mine[j].balance, amount, &mine[i], &mine[j]);
        }
    }
    return NULL;
}

static int64_t total(void)
{
    int64_t sum = bank->pool;
    for (unsigned t = 0; t < bank->threads; t++)
        for (int i = 0; i < ACCTS; i++)
            sum += bank->acct[t][i].balance;
    return sum;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bank FILE [SECONDS [THREADS]] | bank FILE check\n");
        return 2;
    }
    space = create_persistent_allocator(argv[1], 16u << 20);
    if (space == NULL)
        die(argv[1]);
    bool created;
    bank = persistent_root_get(space, TAG, sizeof *bank, &created);
    if (bank == NULL)
        die("root");
    unsigned threads = argc > 3 ? (unsigned)atoi(argv[3]) : 4;
    if (threads < 1 || threads > THREADS_MAX)
        threads = 4;
    if (bank->magic == 0) {
        /* a new bank, set up in one transaction too */
        if (persistent_tx_begin(space) != 0 || persistent_tx_add(space, bank, sizeof *bank) != 0)
            die("setup");
        bank->threads = threads;
        bank->pool = START;
        for (unsigned t = 0; t < THREADS_MAX; t++)
            for (int i = 0; i < ACCTS; i++)
                bank->acct[t][i].balance = START;
        bank->magic = TAG;
        if (persistent_tx_commit(space) != 0)
            die("setup");
    }
    int64_t want = START + (int64_t)bank->threads * ACCTS * START;
    if (argc > 2 && strcmp(argv[2], "check") == 0) {
        int64_t sum = total();
        printf("total %" PRId64 " (%s), %" PRIu64 " receipts written\n", sum,
               sum == want ? "as it began" : "WRONG", bank->serial);
        destroy_persistent_allocator(space);
        return sum == want ? 0 : 1;
    }
    double secs = argc > 2 ? atof(argv[2]) : 2.0;
    pthread_t th[THREADS_MAX];
    for (unsigned t = 0; t < bank->threads; t++)
        pthread_create(&th[t], NULL, teller, (void *)(uintptr_t)t);
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store_explicit(&stop, 1, memory_order_relaxed);
    for (unsigned t = 0; t < bank->threads; t++)
        pthread_join(th[t], NULL);
    printf("total %" PRId64 " after %" PRIu64 " receipts\n", total(), bank->serial);
    destroy_persistent_allocator(space);
    return 0;
}

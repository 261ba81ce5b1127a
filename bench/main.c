/* pmbench: one measurement of one backend, printed as RESULT lines.
 *
 *   pmbench --list
 *   pmbench -b BACKEND -w WORKLOAD [-t THREADS] [options]
 *
 * Backends: malloc (the process's malloc: glibc, or whatever LD_PRELOAD
 * put in front of it), pm-process, pm-sync, pm-pmem, and when built with
 * them pmemobj and boost.  Workloads: threadtest, larson, prodcons, mixed,
 * realloc (throughput), frag and frag-shift (memory efficiency), latency, reopen
 * (persistent_mem only), persist (pm-pmem only: one store written back and
 * fenced, persist.c).  run.py drives it; see bench/README.md. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <persistent_mem.h>

#include "bench.h"
#include "persist.h"

static void usage(void)
{
    fputs("usage: pmbench --list\n"
          "       pmbench -b BACKEND -w WORKLOAD [-t THREADS] [-d SECONDS]\n"
          "               [--dir DIR] [--pool-mb N] [--live-mb N]\n"
          "               [--samples N] [--blocks N] [--reps N]\n"
          "workloads: threadtest larson prodcons mixed realloc frag frag-shift\n"
          "           latency reopen persist\n",
          stderr);
    exit(2);
}

static const char *malloc_origin(void)
{
    Dl_info di;
    void *(*m)(size_t) = malloc;
    if (dladdr((void *)(uintptr_t)m, &di) && di.dli_fname)
        return di.dli_fname;
    return "unknown";
}

int main(int argc, char **argv)
{
    const char *backend = NULL, *workload = NULL;
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    int threads = 1, reps = 5;
    double duration = 0.5;
    uint64_t pool_mb = 1024, live_mb = 128, samples = 200000, blocks = 10000000;
    bool pool_given = false;

    static const struct option longopts[] = {
        {"list", no_argument, NULL, 'L'},
        {"backend", required_argument, NULL, 'b'},
        {"workload", required_argument, NULL, 'w'},
        {"threads", required_argument, NULL, 't'},
        {"duration", required_argument, NULL, 'd'},
        {"dir", required_argument, NULL, 'D'},
        {"pool-mb", required_argument, NULL, 'P'},
        {"live-mb", required_argument, NULL, 'M'},
        {"samples", required_argument, NULL, 'S'},
        {"blocks", required_argument, NULL, 'N'},
        {"reps", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "b:w:t:d:", longopts, NULL)) != -1) {
        switch (c) {
        case 'L':
            backend_list();
            return 0;
        case 'b': backend = optarg; break;
        case 'w': workload = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'D': dir = optarg; break;
        case 'P': pool_mb = strtoull(optarg, NULL, 10); pool_given = true; break;
        case 'M': live_mb = strtoull(optarg, NULL, 10); break;
        case 'S': samples = strtoull(optarg, NULL, 10); break;
        case 'N': blocks = strtoull(optarg, NULL, 10); break;
        case 'R': reps = atoi(optarg); break;
        default: usage();
        }
    }
    if (backend == NULL || workload == NULL || threads < 1 || duration <= 0)
        usage();
    B = backend_find(backend);
    if (B == NULL) {
        fprintf(stderr, "pmbench: backend %s is not built in\n", backend);
        return 77;
    }

    struct bench_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.dir = dir;
    cfg.pool_size = pool_mb << 20;
    if (strncmp(workload, "frag", 4) == 0 && !pool_given) {
        /* persistent_mem grows its file from a small start, so the file's
         * size is its footprint; fixed pools get room to spare (PMDK's is
         * allocated up front, Boost's file is sparse) */
        cfg.pool_size = UINT64_C(8) << 20;
        cfg.max_size = (live_mb * 6 + 512) << 20;
    }

    if (strcmp(workload, "reopen") == 0) {
        if (strncmp(backend, "pm-", 3) != 0) {
            fprintf(stderr, "pmbench: reopen measures persistent_mem only\n");
            return 77;
        }
        printf("INFO backend=%s workload=reopen blocks=%llu size=%llu\n", backend,
               (unsigned long long)blocks, (unsigned long long)cfg.pool_size);
        return reopen_run(&cfg, blocks, reps) == 0 ? 0 : 1;
    }

    if (strcmp(workload, "persist") == 0) {
        /* pm-pmem's least a call: what caps pm-pmem / PMDK, about (persist.c) */
        if (strcmp(backend, "pm-pmem") != 0) {
            fprintf(stderr, "pmbench: persist measures pm-pmem's write-back\n");
            return 77;
        }
        /* the method pm-pmem's open insists on (backend.c), not a fallback */
        const char *want = getenv("PERSISTENT_MEM_FLUSH");
        if (want == NULL || want[0] == '\0' || strcmp(persistent_flush_method(), want) != 0) {
            fprintf(stderr, "pmbench: persist: flush method %s, not PERSISTENT_MEM_FLUSH=%s\n",
                    persistent_flush_method(), want != NULL ? want : "(unset)");
            return 1;
        }
        if (strcmp(want, "none") == 0) {
            fprintf(stderr, "pmbench: persist: PERSISTENT_MEM_FLUSH=none writes nothing back\n");
            return 1;
        }
        double ns = persist_ns(dir);
        if (ns <= 0) {
            fprintf(stderr, "pmbench: persist: no file for it in %s\n", dir);
            return 1;
        }
        printf("RESULT workload=persist ns=%.2f method=%s\n", ns, persistent_flush_method());
        return 0;
    }

    if (B->open(&cfg) != 0)
        return 1;
    printf("INFO backend=%s malloc_from=%s note=\"%s\"\n", B->name, malloc_origin(),
           B->note);
    fflush(stdout);

    int rc = 0;
    if (tput_known(workload)) {
        struct tput_result res;
        rc = tput_run(workload, threads, duration, &res);
        if (rc == 0)
            printf("RESULT workload=%s threads=%d ops=%llu secs=%.4f mops=%.4f\n",
                   workload, threads, (unsigned long long)res.ops, res.secs,
                   (double)res.ops / res.secs / 1e6);
    } else if (strcmp(workload, "frag") == 0 || strcmp(workload, "frag-shift") == 0) {
        rc = frag_run(threads, live_mb << 20, strcmp(workload, "frag-shift") == 0);
    } else if (strcmp(workload, "latency") == 0) {
        rc = latency_run(threads, samples);
    } else {
        fprintf(stderr, "pmbench: unknown workload %s\n", workload);
        rc = -1;
    }
    fflush(stdout);
    B->close();
    return rc == 0 ? 0 : 1;
}

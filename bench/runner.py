"""Runs pmbench: the workload and backend tables, the preload libraries
jemalloc and mimalloc, one pmbench process per measurement (Runner), and
what a run records about the machine it runs on."""

import glob
import os
import platform
import re
import subprocess
import time

from stats import median

TPUT = ["threadtest", "larson", "prodcons", "mixed", "realloc"]
TPUT_DESC = {
    "threadtest": "each thread allocates 20,000 blocks of 8-128 B, then frees them, in rounds",
    "larson": "random replacement of 8-1000 B blocks; slot arrays move to the next thread every round (cross-thread frees)",
    "prodcons": "thread pairs: one allocates 16-512 B blocks and hands them over, the other frees them (1 thread: both roles, batches of 1024)",
    "mixed": "random replacement, sizes log-uniform 16 B-64 KiB, 1% 64 KiB-1 MiB",
    "realloc": "256 strings per thread grown by 8-256 B appends to 256 B-64 KiB, then halved down to 16 B",
}
EXTRA = ["frag", "frag-shift", "latency", "reopen"]

# name -> pmbench backend, extra environment, what malloc must come from
BACKENDS = {
    "glibc": ("malloc", {}, "libc.so"),
    "jemalloc": ("malloc", {}, "jemalloc"),
    "mimalloc": ("malloc", {}, "mimalloc"),
    "pmdk": ("pmemobj", {"PMEM_IS_PMEM_FORCE": "1"}, None),
    "boost": ("boost", {}, None),
    "pm-process": ("pm-process", {}, None),
    "pm-sync": ("pm-sync", {}, None),
    "pm-pmem": ("pm-pmem", {"PERSISTENT_MEM_FLUSH": "clwb"}, None),
}
ORDER = list(BACKENDS)
PM = ["pm-process", "pm-sync", "pm-pmem"]
PEERS = ["glibc", "jemalloc", "mimalloc", "pmdk", "boost"]

PRELOAD_SONAMES = {
    "jemalloc": ["libjemalloc.so.2"],
    "mimalloc": ["libmimalloc.so.2", "libmimalloc.so.2.0", "libmimalloc.so"],
}
PRELOAD_PACKAGES = {"jemalloc": "libjemalloc2", "mimalloc": "libmimalloc2.0"}


def find_lib(name):
    """Path of the runtime library to LD_PRELOAD, or None."""
    sonames = PRELOAD_SONAMES[name]
    for ldconfig in ("ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        try:
            out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True,
                                 check=False).stdout
        except OSError:
            continue
        for so in sonames:
            for line in out.splitlines():
                m = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
                if m and m.group(1) == so and ("64" in m.group(2)) == (
                        platform.architecture()[0] == "64bit"):
                    return m.group(3)
        break
    dirs = ["/usr/lib/%s-linux-gnu" % platform.machine(), "/usr/lib64", "/usr/lib",
            "/usr/local/lib", "/lib/%s-linux-gnu" % platform.machine()]
    for so in sonames:
        for d in dirs:
            if os.path.exists(os.path.join(d, so)):
                return os.path.join(d, so)
    try:
        out = subprocess.run(["dpkg", "-L", PRELOAD_PACKAGES[name]],
                             capture_output=True, text=True, check=False).stdout
        for so in sonames:
            for line in out.splitlines():
                if line.endswith("/" + so):
                    return line
    except OSError:
        pass
    return None


def parse_kv(line):
    out = {}
    for m in re.finditer(r'(\w+)=("[^"]*"|\S+)', line):
        v = m.group(2)
        out[m.group(1)] = v[1:-1] if v.startswith('"') else v
    return out


class Runner:
    def __init__(self, args):
        self.args = args
        self.raw = []           # dicts: workload, backend, threads, rep, metric, value
        self.failures = []      # (workload, backend, threads, message)
        self.skipped = {}       # backend -> reason
        self.notes = {}         # backend -> note printed by pmbench
        self.sources = {}       # backend -> how frag measured its footprint
        self.reopen_info = {}   # backend -> INFO of its reopen run
        self.frag_diag = {}     # "kind backend" -> persistent_mem's accounting
        self.persist = []       # ns of a store written back and fenced (pm-pmem)
        self.persist_method = None
        self.meta = {}
        self.env_base = dict(os.environ)
        # nothing the harness did not ask for: meson sets MALLOC_PERTURB_
        # for tests, which makes glibc fill every block
        for k in ("MALLOC_PERTURB_", "MALLOC_CHECK_", "LD_PRELOAD", "PERSISTENT_MEM_FLUSH",
                  "PMEM_IS_PMEM_FORCE", "ASAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS"):
            self.env_base.pop(k, None)
        self.preload = {}
        self.run_secs = []

    # -- processes --

    def env_for(self, backend):
        env = dict(self.env_base)
        env.update(BACKENDS[backend][1])
        if backend in self.preload:
            env["LD_PRELOAD"] = self.preload[backend]
        return env

    def cleanup(self, pid):
        for f in glob.glob(os.path.join(self.args.dir, "pmbench-%d-*" % pid)):
            try:
                os.unlink(f)
            except OSError:
                pass

    def pmbench(self, backend, workload, threads, extra=(), timeout=900):
        cmd = [self.args.pmbench, "-b", BACKENDS[backend][0], "-w", workload,
               "-t", str(threads), "--dir", self.args.dir] + list(extra)
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, env=self.env_for(backend), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            err = "timed out after %d s\n" % timeout + err
        finally:
            self.cleanup(p.pid)
        self.run_secs.append(time.monotonic() - t0)
        results, info, diags = [], {}, []
        for line in out.splitlines():
            if line.startswith("RESULT "):
                results.append(parse_kv(line[7:]))
            elif line.startswith("INFO diag "):
                diags.append(parse_kv(line[10:]))
            elif line.startswith("INFO "):
                info.update(parse_kv(line[5:]))
        if diags:
            info["diag"] = diags
        if p.returncode != 0 or not results:
            msg = (err.strip().splitlines() or ["exit status %d" % p.returncode])[-1]
            return None, info, msg
        return results, info, None

    # -- availability --

    def probe(self):
        built = {}
        out = subprocess.run([self.args.pmbench, "--list"], capture_output=True, text=True,
                             env=self.env_base, check=True).stdout
        for line in out.splitlines():
            if line.startswith("BACKEND "):
                kv = parse_kv(line[8:])
                built[kv["name"]] = kv["available"] == "1"
        for lib in ("jemalloc", "mimalloc"):
            given = getattr(self.args, lib)
            if given == "none":
                self.skipped[lib] = "disabled or not found when meson configured the build"
                continue
            path = given or find_lib(lib)
            if not path or not os.path.exists(path):
                self.skipped[lib] = "runtime library not found (install %s)" % PRELOAD_PACKAGES[lib]
                continue
            self.preload[lib] = path
        for b in self.backends:
            if b in self.skipped:
                continue
            exe = BACKENDS[b][0]
            if not built.get(exe, False):
                self.skipped[b] = "pmbench built without it (meson option %s; install %s)" % (
                    "pmemobj" if b == "pmdk" else "boost",
                    "libpmemobj-dev" if b == "pmdk" else "libboost-dev")
                continue
            res, info, msg = self.pmbench(b, "threadtest", 1, ["-d", "0.02", "--pool-mb", "64"])
            if res is None:
                self.skipped[b] = "does not run here: " + msg
                continue
            want = BACKENDS[b][2]
            origin = info.get("malloc_from", "")
            if want and want not in os.path.basename(origin):
                self.skipped[b] = "malloc comes from %s, not %s (LD_PRELOAD failed)" % (origin, want)
                continue
            note = info.get("note", "")
            if b in self.preload:
                note = "LD_PRELOAD=" + self.preload[b]
            self.notes[b] = note
        self.active = [b for b in self.backends if b not in self.skipped]

    # -- measurements --

    def record(self, workload, backend, threads, rep, metrics):
        for k, v in metrics.items():
            self.raw.append(dict(workload=workload, backend=backend, threads=threads,
                                 rep=rep, metric=k, value=v))

    def rotate(self, items, k):
        if not items:
            return items
        k %= len(items)
        return items[k:] + items[:k]

    def run_tput(self, w, threads):
        a = self.args
        for rep in range(a.reps):
            line = []
            for b in self.rotate(self.active, rep):
                res, _, msg = self.pmbench(b, w, threads, ["-d", str(a.duration),
                                                            "--pool-mb", str(a.pool_mb)])
                if res is None:
                    self.failures.append((w, b, threads, msg))
                    line.append("%s FAIL" % b)
                    continue
                mops = float(res[0]["mops"])
                self.record(w, b, threads, rep, {"mops": mops})
                line.append("%s %.1f" % (b, mops))
            self.progress("%-10s %d thr  rep %d/%d: %s" % (w, threads, rep + 1, a.reps,
                                                          "  ".join(line)))

    def run_frag(self, kind, threads):
        a = self.args
        for rep in range(a.reps):
            line = []
            for b in self.rotate(self.active, rep):
                res, info, msg = self.pmbench(b, kind, threads, ["--live-mb", str(a.live_mb)])
                if res is None:
                    self.failures.append((kind, b, threads, msg))
                    line.append("%s FAIL" % b)
                    continue
                r = res[0]
                m = {k: float(r[k]) for k in ("ratio", "live_peak", "footprint",
                                               "file_peak", "rss_peak")}
                self.record(kind, b, threads, rep, m)
                self.sources[b] = r["source"]
                if "diag" in info:
                    self.frag_diag["%s %s" % (kind, b)] = info["diag"]
                line.append("%s %.2f" % (b, m["ratio"]))
            self.progress("%-10s %d thr  rep %d/%d (footprint/live): %s" % (
                kind, threads, rep + 1, a.reps, "  ".join(line)))

    def run_latency(self):
        a = self.args
        keys = ["malloc_p50", "malloc_p99", "malloc_p999", "free_p50", "free_p99",
                "free_p999", "timer_ns"]
        for rep in range(a.reps):
            line = []
            for b in self.rotate(self.active, rep):
                res, _, msg = self.pmbench(b, "latency", a.latency_threads,
                                           ["--samples", str(a.samples)])
                if res is None:
                    self.failures.append(("latency", b, a.latency_threads, msg))
                    line.append("%s FAIL" % b)
                    continue
                m = {k: float(res[0][k]) for k in keys}
                self.record("latency", b, a.latency_threads, rep, m)
                line.append("%s %.0f/%.0f" % (b, m["malloc_p50"], m["malloc_p99"]))
            self.progress("latency    %d thr  rep %d/%d (malloc p50/p99 ns): %s" % (
                a.latency_threads, rep + 1, a.reps, "  ".join(line)))

    def run_reopen(self):
        a = self.args
        for b in [x for x in a.reopen_backends if x in self.active]:
            res, info, msg = self.pmbench(
                b, "reopen", 1, ["--blocks", str(a.blocks), "--pool-mb", str(a.reopen_mb),
                                 "--reps", str(a.reps)], timeout=3600)
            if res is None:
                self.failures.append(("reopen", b, 1, msg))
                self.progress("reopen     %s: FAIL %s" % (b, msg))
                continue
            self.reopen_info[b] = info
            for r in res:
                self.record("reopen", b, 1, int(r["rep"]), {
                    k: float(r[k]) for k in ("clean_open_ms", "killed_open_ms",
                                             "clean_close_ms", "killed_close_ms",
                                             "killed_tx_open_ms", "file_size", "blocks")
                    if k in r})
            self.progress("reopen     %s: clean %s ms, killed %s ms" % (
                b, "/".join(r["clean_open_ms"] for r in res),
                "/".join(r["killed_open_ms"] for r in res)))

    def run_persist(self):
        """pm-pmem's least a call, a store written back and fenced, measured
        as many times as there are repetitions, one after another right
        after the throughput runs; the least of them gives pm-pmem / pmdk
        its ceiling (stats.pmem_ceiling)."""
        if "pm-pmem" not in self.active or "pmdk" not in self.active:
            return
        for rep in range(self.args.reps):
            res, _, msg = self.pmbench("pm-pmem", "persist", 1)
            if res is None:
                self.failures.append(("persist", "pm-pmem", 1, msg))
                self.progress("persist    pm-pmem: FAIL %s" % msg)
                return
            self.persist.append(float(res[0]["ns"]))
            self.persist_method = res[0]["method"]
        self.progress("persist    pm-pmem (%s): %s ns a store written back and fenced" % (
            self.persist_method, "/".join("%.0f" % x for x in self.persist)))

    def progress(self, s):
        el = time.monotonic() - self.t_start
        print("[%5.0fs] %s" % (el, s), flush=True)

    # -- summaries --

    def values(self, w, b, t, metric):
        return [r["value"] for r in self.raw if r["workload"] == w and r["backend"] == b
                and r["threads"] == t and r["metric"] == metric]

    def med(self, w, b, t, metric):
        return median(self.values(w, b, t, metric))


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = "%.0f GiB RAM" % (kb / 1048576)
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": model, "cores": os.cpu_count() or 0, "kernel": platform.release(),
            "mem": mem}


def git_rev(path):
    try:
        rev = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", path, "status", "--porcelain", "--", "src", "include"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + (" (src/ or include/ modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def estimate(a, nb):
    """Seconds a run takes (overheads measured on the 2-core development VM)."""
    n_tput = sum(1 for w in a.workloads if w in TPUT) * len(a.threads) * a.reps * nb
    est = n_tput * (a.duration + 0.25)
    for kind in ("frag", "frag-shift"):
        if kind in a.workloads:
            est += len(a.frag_threads) * a.reps * nb * (a.live_mb / 128 * 0.8 + 0.2)
    if "latency" in a.workloads:
        est += a.reps * nb * (a.samples / 200000 * 0.8 + 0.2)
    if "reopen" in a.workloads:
        est += len(a.reopen_backends) * (a.blocks / 1e7) * (2 + 1.2 * a.reps)
    return est


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"

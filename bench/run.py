#!/usr/bin/env python3
"""Runs the persistent_mem benchmark comparison and reports it.

One process of pmbench per measurement; the backends alternate within each
repetition, every cell is the median of --reps runs.  Prints Markdown tables
(Mops/s, ratios against glibc and mimalloc and the other aims) and writes
raw.csv, summary.csv, chart.svg and report.md into a results directory named
after the date and the machine.  See bench/README.md.

  python3 bench/run.py --pmbench BUILD/bench/pmbench            # full run
  python3 bench/run.py --pmbench BUILD/bench/pmbench --quick    # a few minutes
"""

import argparse
import csv
import datetime
import glob
import json
import math
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time

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

# (numerator, denominator, aim): the ratios printed under each table.  The
# aims against volatile allocators apply to the modes that do not flush
# (process, sync); pm-pmem against them is shown without an aim.  PMDK is
# compared with both the default mode and the like-for-like pmem mode.
RATIOS = [
    ("pm-process", "glibc", 1.0), ("pm-process", "mimalloc", 0.7),
    ("pm-sync", "glibc", 1.0), ("pm-sync", "mimalloc", 0.7),
    ("pm-pmem", "glibc", None), ("pm-pmem", "mimalloc", None),
    ("pm-process", "pmdk", 20.0), ("pm-pmem", "pmdk", 20.0),
    ("pm-process", "boost", 5.0),
]
FOOTPRINT_AIM = 1.25

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
                                             "file_size", "blocks")})
            self.progress("reopen     %s: clean %s ms, killed %s ms" % (
                b, "/".join(r["clean_open_ms"] for r in res),
                "/".join(r["killed_open_ms"] for r in res)))

    def progress(self, s):
        el = time.monotonic() - self.t_start
        print("[%5.0fs] %s" % (el, s), flush=True)

    # -- summaries --

    def values(self, w, b, t, metric):
        return [r["value"] for r in self.raw if r["workload"] == w and r["backend"] == b
                and r["threads"] == t and r["metric"] == metric]

    def med(self, w, b, t, metric):
        v = self.values(w, b, t, metric)
        return statistics.median(v) if v else None


def fmt(x, digits=1):
    if x is None:
        return "-"
    if x >= 100:
        return "%.0f" % x
    return "%.*f" % (digits, x)


def fmt_ratio(x, aim):
    if x is None:
        return "-"
    s = "%.2f" % x if x < 100 else "%.0f" % x
    return s + ("" if aim is None or x >= aim else " ✗")


def md_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    def line(r):
        return "| " + " | ".join(str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i])
                                 for i, c in enumerate(r)) + " |"
    sep = "|" + "|".join("-" * (w + 1) + ("-" if i == 0 else ":") for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), sep] + [line(r) for r in rows])


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


def slug(s):
    s = re.sub(r"\([^)]*\)", "", s.lower())
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")
    return s[:40].strip("-")


def git_rev(path):
    try:
        rev = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", path, "status", "--porcelain", "--", "src", "include"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + (" (src/ or include/ modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def report(run, out_dir):
    a, m = run.args, run.meta
    mach = m["machine"]
    started = datetime.datetime.fromisoformat(m["started"])
    finished = datetime.datetime.fromisoformat(m["finished"])
    lines = []
    p = lines.append
    p("# persistent_mem benchmark%s" % (" (quick mode: noisy, not for publication)" if a.quick else ""))
    p("")
    p("- date: %s (took %.0f min)" % (started.strftime("%Y-%m-%d %H:%M %Z").strip(),
                                       (finished - started).total_seconds() / 60))
    p("- machine: %s, %d cores, %s, Linux %s" % (mach["cpu"], mach["cores"], mach["mem"],
                                                 mach["kernel"]))
    p("- load average before/after: %s / %s" % (m["load_before"], m["load_after"]))
    p("- command: `%s`" % m["cmdline"])
    if m.get("argv") and m["argv"] != m["cmdline"]:
        p("- which ran: `%s`" % m["argv"])
    p("- persistent_mem %s, build type %s; files on %s" % (m["git"], a.buildtype, a.dir))
    p("- every cell: median of %d runs of %.2g s; backends alternate within each repetition"
      % (a.reps, a.duration))
    p("")
    p("Backends:")
    p("")
    for b in run.backends:
        if b in run.skipped:
            p("- **%s: skipped** — %s" % (b, run.skipped[b]))
        else:
            p("- %s: %s" % (b, run.notes.get(b) or "the system's malloc"))
    p("")
    p("pm-pmem writes back every metadata change with CLWB and fences it "
      "(PERSISTENT_MEM_FLUSH=clwb); PMDK runs with PMEM_IS_PMEM_FORCE=1 so it "
      "flushes with cache-line instructions instead of msync.  pm-sync pays only "
      "at persistent_sync() and close, which these workloads do not call.")
    p("")
    p("## Throughput, Mops/s (one op = one malloc, free or realloc call)")
    p("")
    p("Ratios below each table are persistent_mem / peer; ✗ marks a ratio below its aim "
      "(≥1.0 glibc, ≥0.7 mimalloc for pm-process and pm-sync; ≥20 PMDK for pm-process and "
      "for pm-pmem, which flushes like PMDK does; ≥5 Boost for pm-process).  pm-pmem against "
      "the volatile allocators is shown without an aim.")
    misses = []
    checked = 0
    for w in [x for x in TPUT if x in a.workloads]:
        p("")
        p("### %s" % w)
        p("")
        p(TPUT_DESC[w] + ".")
        p("")
        header = ["backend"] + ["%d thr" % t for t in a.threads]
        rows = []
        for b in run.backends:
            if b in run.skipped:
                rows.append([b] + ["skipped"] * len(a.threads))
                continue
            rows.append([b] + [fmt(run.med(w, b, t, "mops")) for t in a.threads])
        for num, den, aim in RATIOS:
            if num in run.skipped or den in run.skipped:
                continue
            cells = []
            for t in a.threads:
                x, y = run.med(w, num, t, "mops"), run.med(w, den, t, "mops")
                r = x / y if x and y else None
                if r is not None and aim is not None:
                    checked += 1
                    if r < aim:
                        misses.append("%s %d thr: %s/%s = %.2f (aim %.2g)" % (w, t, num, den, r, aim))
                cells.append(fmt_ratio(r, aim))
            rows.append(["%s / %s" % (num, den)] + cells)
        p(md_table(header, rows))

    kinds = [k for k in ("frag", "frag-shift") if k in a.workloads]
    if kinds:
        p("")
        p("## Memory efficiency: peak footprint / peak live bytes")
        p("")
        p("%d MiB live at peak.  frag: random replacement with the mixed workload's sizes "
          "(the aim, ≤ %.2f, applies here); frag-shift: the size distribution shifts under "
          "a constant live target (harsher; about 1.7 is forced on any allocator that cannot "
          "move blocks).  Footprint: physical file size where the file grows with the heap "
          "(persistent_mem on a growable space, Boost's sparse file), else peak RSS growth "
          "(volatile allocators; PMDK, whose pool file is allocated in full)."
          % (a.live_mb, FOOTPRINT_AIM))
        p("")
        header = ["backend"] + ["%s %d thr" % (k, t) for k in kinds for t in a.frag_threads] + [
            "footprint MiB (%s %d thr)" % (kinds[0], a.frag_threads[0]), "source"]
        rows = []
        for b in run.backends:
            if b in run.skipped:
                continue
            cells = []
            for k in kinds:
                for t in a.frag_threads:
                    r = run.med(k, b, t, "ratio")
                    miss = k == "frag" and b in PM and r is not None and r > FOOTPRINT_AIM
                    if k == "frag" and b in PM and r is not None:
                        checked += 1
                        if miss:
                            misses.append("frag %d thr: %s footprint %.2f x live (aim %.2f)"
                                          % (t, b, r, FOOTPRINT_AIM))
                    cells.append("-" if r is None else ("%.2f" % r) + (" ✗" if miss else ""))
            fp = run.med(kinds[0], b, a.frag_threads[0], "footprint")
            rows.append([b] + cells + [fmt(fp / 1048576 if fp else None),
                                       run.sources.get(b, "-")])
        p(md_table(header, rows))

    diag = [(k, run.frag_diag[k]) for k in sorted(run.frag_diag) if k.endswith(" pm-process")]
    if diag:
        p("")
        p("Where persistent_mem's footprint goes (pm-process, 1 thread, last run; MiB, from "
          "persistent_stats_get and persistent_space_info at the end of each phase):")
        p("")
        header = ["workload", "phase", "asked live", "usable live", "superblocks",
                  "of which live", "large runs", "free pages", "used size", "file"]
        rows = []
        mib = lambda v: "%.1f" % (float(v) / 1048576)
        for k, ds in diag:
            for d in ds:
                rows.append([k.split()[0], d["phase"], mib(d["requested"]), mib(d["usable_live"]),
                             mib(d["superblock_bytes"]), mib(d["small_live"]),
                             mib(d["large_bytes"]), mib(d["free_bytes"]), mib(d["used_size"]),
                             mib(d["file_size"])])
        p(md_table(header, rows))

    if "latency" in a.workloads:
        p("")
        p("## Latency of single calls at %d threads, ns" % a.latency_threads)
        p("")
        p("Random replacement of 16-1024 B blocks, %d calls of each kind per thread; "
          "percentiles are medians over the runs.  Every sample includes one clock reading "
          "(timer column)." % a.samples)
        p("")
        header = ["backend", "malloc p50", "p99", "p99.9", "free p50", "p99", "p99.9", "timer"]
        rows = []
        for b in run.backends:
            if b in run.skipped:
                continue
            t = a.latency_threads
            rows.append([b] + [fmt(run.med("latency", b, t, k), 0) for k in
                               ("malloc_p50", "malloc_p99", "malloc_p999", "free_p50",
                                "free_p99", "free_p999", "timer_ns")])
        p(md_table(header, rows))

    if "reopen" in a.workloads:
        p("")
        p("## Reopen of a %d MiB space with %s live blocks, ms" % (
            a.reopen_mb, "{:,}".format(a.blocks)))
        p("")
        p("Clean: after persistent_space_close.  Killed: after SIGKILL while two threads "
          "were replacing blocks; the open recovers the space.  Median (min-max) of %d." % a.reps)
        p("")
        header = ["backend", "clean open", "killed open", "close after recovery", "check"]
        rows = []
        for b in [x for x in a.reopen_backends if x not in run.skipped]:
            def mm(k, b=b):
                v = run.values("reopen", b, 1, k)
                if not v:
                    return "-"
                return "%.1f (%.1f-%.1f)" % (statistics.median(v), min(v), max(v))
            info = run.reopen_info.get(b, {})
            chk = "%s errors" % info.get("errors", "?") if info else "-"
            rows.append([b, mm("clean_open_ms"), mm("killed_open_ms"), mm("killed_close_ms"), chk])
        p(md_table(header, rows))

    p("")
    p("## Aims")
    p("")
    if checked == 0:
        p("Nothing to check.")
    elif misses:
        p("%d of %d checks miss their aim:" % (len(misses), checked))
        p("")
        for m in misses:
            p("- " + m)
    else:
        p("All %d checks meet their aims." % checked)
    if run.failures:
        p("")
        p("## Failed runs")
        p("")
        for w, b, t, msg in run.failures:
            p("- %s %s %d thr: %s" % (w, b, t, msg))
    p("")
    p("![throughput](chart.svg)")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(text)
    return text


def write_summary(run, out_dir):
    keys = sorted({(r["workload"], r["backend"], r["threads"], r["metric"]) for r in run.raw},
                  key=lambda k: ((TPUT + EXTRA).index(k[0]), ORDER.index(k[1]), k[2], k[3]))
    with open(os.path.join(out_dir, "summary.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["workload", "backend", "threads", "metric", "median", "min", "max", "runs",
                     "vs_glibc", "vs_mimalloc"])
        for w, b, t, m in keys:
            v = run.values(w, b, t, m)
            med = statistics.median(v)
            ratios = []
            for peer in ("glibc", "mimalloc"):
                pv = run.med(w, peer, t, m) if m == "mops" else None
                ratios.append("%.4f" % (med / pv) if pv else "")
            wr.writerow([w, b, t, m, "%.6g" % med, "%.6g" % min(v), "%.6g" % max(v), len(v)]
                        + ratios)


def chart(run, out_dir, title):
    """chart.svg: Mops/s against threads per workload, log scale; footprint bars."""
    a = run.args
    if not shutil.which("gnuplot"):
        return "gnuplot not found; no chart"
    ws = [w for w in TPUT if w in a.workloads]
    bs = [b for b in run.backends if b not in run.skipped]
    if not ws or not bs:
        return "nothing to plot"
    allv = [v for w in ws for b in bs for t in a.threads if (v := run.med(w, b, t, "mops"))]
    if not allv:
        return "nothing to plot"
    # one scale for every panel
    y_lo = 10 ** math.floor(math.log10(min(allv)))
    y_hi = 10 ** math.ceil(math.log10(max(allv) * 1.2))
    for w in ws:
        with open(os.path.join(out_dir, "chart-%s.dat" % w), "w") as f:
            f.write("threads " + " ".join(bs) + "\n")
            for t in a.threads:
                f.write("%d %s\n" % (t, " ".join(
                    "%.4f" % v if (v := run.med(w, b, t, "mops")) else "NaN" for b in bs)))
    has_frag = "frag" in a.workloads
    if has_frag:
        with open(os.path.join(out_dir, "chart-frag.dat"), "w") as f:
            for i, b in enumerate(bs):
                r = run.med("frag", b, a.frag_threads[0], "ratio")
                f.write('%d "%s" %s\n' % (i, b, "%.4f" % r if r else "NaN"))
    panels = len(ws) + (1 if has_frag else 0)
    cols = 3
    rows = (panels + cols - 1) // cols
    style = {"glibc": "lc rgb '#555555' dt 2", "jemalloc": "lc rgb '#8c564b' dt 2",
             "mimalloc": "lc rgb '#1f77b4' dt 2", "pmdk": "lc rgb '#9467bd' dt 3",
             "boost": "lc rgb '#7f7f7f' dt 3", "pm-process": "lc rgb '#d62728' lw 3",
             "pm-sync": "lc rgb '#ff7f0e' lw 2", "pm-pmem": "lc rgb '#2ca02c' lw 3"}
    w_px, h_px = cols * 460, rows * 380 + 110
    top = 1 - 110.0 / h_px                # room for the title and the key
    g = []
    g.append("if (ARG1 eq 'png') {")
    g.append("  set terminal pngcairo size %d,%d noenhanced font 'Helvetica,10' background rgb 'white'"
             % (w_px, h_px))
    g.append("  set output 'chart.png'")
    g.append("} else {")
    g.append("  set terminal svg size %d,%d dynamic noenhanced font 'Helvetica,12' background rgb 'white'"
             % (w_px, h_px))
    g.append("  set output 'chart.svg'")
    g.append("}")
    g.append("set datafile missing 'NaN'")
    g.append("set multiplot layout %d,%d title \"%s\" font ',13' margins 0.06,0.98,0.07,%.3f "
             "spacing 0.07,0.12" % (rows, cols, title.replace('"', "'"), top))
    g.append("set logscale x 2")
    g.append("set logscale y 10")
    g.append("set grid")
    g.append("set xlabel 'threads'")
    g.append("set ylabel 'Mops/s'")
    g.append("unset key")
    # one legend for all panels, drawn under the title
    y_key = top + 0.42 * (1 - top)
    for j, b in enumerate(bs):
        x = 0.08 + 0.86 * j / len(bs)
        g.append("set arrow %d from screen %.3f,%.3f to screen %.3f,%.3f nohead %s"
                 % (j + 1, x, y_key, x + 0.03, y_key, style.get(b, "")))
        g.append("set label %d '%s' at screen %.3f,%.3f left font ',10'"
                 % (j + 1, b, x + 0.036, y_key))
    g.append("set xrange [0.8:%g]" % (max(a.threads) * 1.25))
    g.append("set xtics (%s)" % ", ".join("'%d' %d" % (t, t) for t in a.threads))
    g.append("set yrange [%g:%g]" % (y_lo, y_hi))
    for i, w in enumerate(ws):
        g.append("set title '%s'" % w)
        if i == 1:
            g.append("unset arrow")
            g.append("unset label")
        plots = []
        for j, b in enumerate(bs):
            plots.append("'%s' using 1:%d with linespoints %s pt 7 ps 0.6 title '%s'" % (
                "chart-%s.dat" % w, j + 2, style.get(b, ""), b))
        g.append("plot " + ", \\\n  ".join(plots))
    if has_frag:
        g.append("unset logscale")
        g.append("unset arrow")
        g.append("unset label")
        g.append("set title 'frag: peak footprint / peak live bytes (%d thr; aim 1.25)'"
                 % a.frag_threads[0])
        g.append("set ylabel 'ratio'")
        g.append("set xlabel ''")
        g.append("set xrange [-0.6:%g]" % (len(bs) - 0.4))
        g.append("set yrange [0:*]")
        g.append("set xtics rotate by -35 font ',9'")
        g.append("set style fill solid 0.6")
        g.append("set boxwidth 0.7")
        g.append("plot '%s' using 1:3:xtic(2) with boxes lc rgb '#4c72b0', %g with lines dt 2 lc rgb '#d62728'"
                 % ("chart-frag.dat", FOOTPRINT_AIM))
    g.append("unset multiplot")
    script = os.path.join(out_dir, "chart.gp")
    with open(script, "w") as f:
        f.write("\n".join(g) + "\n")
    for term in ("svg", "png"):
        # in the results directory, with names relative to it: the chart
        # carries no path of the machine it was made on
        r = subprocess.run(["gnuplot", "-c", "chart.gp", term], capture_output=True, text=True,
                           check=False, cwd=out_dir)
        if r.returncode != 0:
            return "gnuplot failed: " + r.stderr.strip()[-300:]
    return None


def headline(run):
    """The compact table README shows: pm-process and its ratios per cell."""
    a = run.args
    header = ["workload", "thr", "pm-process Mops/s", "/ glibc", "/ mimalloc", "/ PMDK",
              "/ Boost", "pm-pmem / PMDK"]
    rows = []
    for w in [x for x in TPUT if x in a.workloads]:
        for t in a.threads:
            pm = run.med(w, "pm-process", t, "mops")
            def r(num, den, aim, t=t, w=w):
                x, y = run.med(w, num, t, "mops"), run.med(w, den, t, "mops")
                return fmt_ratio(x / y if x and y else None, aim)
            rows.append([w, t, fmt(pm), r("pm-process", "glibc", 1.0),
                         r("pm-process", "mimalloc", 0.7), r("pm-process", "pmdk", 20.0),
                         r("pm-process", "boost", 5.0), r("pm-pmem", "pmdk", 20.0)])
    return md_table(header, rows)


def publish(readme, out_dir, run):
    """Replaces the results section of bench/README.md with this run."""
    if not os.path.exists(readme):
        return
    with open(readme) as f:
        s = f.read()
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    if begin not in s or end not in s:
        return
    m = run.meta
    rel = os.path.relpath(out_dir, os.path.dirname(readme))
    # the build directory as seen from the source tree, not this machine's path
    top = os.path.dirname(os.path.dirname(os.path.abspath(readme))) + os.sep
    cmd = m["cmdline"].replace(top, "")
    started = datetime.datetime.fromisoformat(m["started"])
    parts = [begin, "",
             "Made by `%s` on %s, %s (%d cores), %s; load average %s before, %s after." % (
                 cmd, started.strftime("%Y-%m-%d"), m["machine"]["cpu"],
                 m["machine"]["cores"], m["machine"]["mem"], m["load_before"],
                 m["load_after"]),
             "persistent_mem %s.  Median of %d runs per cell; ✗ marks a ratio below its aim."
             % (m["git"], run.args.reps),
             "", headline(run), "",
             "Everything else (all backends, memory efficiency, latency, reopen, skipped "
             "backends): [%s/report.md](%s/report.md); data in `%s/summary.csv` and "
             "`%s/raw.csv`." % (rel, rel, rel, rel),
             "", "![throughput, Mops/s, log scale](%s/chart.svg)" % rel, "", end]
    s = s[:s.index(begin)] + "\n".join(parts) + s[s.index(end) + len(end):]
    with open(readme, "w") as f:
        f.write(s)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--find-lib", choices=sorted(PRELOAD_SONAMES),
                    help="print the path of a preload library and exit")
    ap.add_argument("--pmbench", help="path of the pmbench executable (BUILD/bench/pmbench)")
    ap.add_argument("--replot", metavar="DIR",
                    help="rebuild report.md, summary.csv and the chart of an earlier run")
    ap.add_argument("--quick", action="store_true",
                    help="short runs to check the harness (a few minutes, noisy)")
    ap.add_argument("--threads", help="comma-separated thread counts (default 1,2,4,8)")
    ap.add_argument("--reps", type=int, help="runs per cell, median reported (default 5)")
    ap.add_argument("--duration", type=float, help="seconds per throughput run (default 1.0)")
    ap.add_argument("--workloads", help="comma-separated subset of %s" % ",".join(TPUT + EXTRA))
    ap.add_argument("--backends", help="comma-separated subset of %s" % ",".join(ORDER))
    ap.add_argument("--pool-mb", type=int, default=1024,
                    help="size of pools and spaces for throughput runs (default 1024)")
    ap.add_argument("--live-mb", type=int, help="frag: peak live MiB (default 128)")
    ap.add_argument("--frag-threads", help="frag: thread counts (default 1,4)")
    ap.add_argument("--samples", type=int, help="latency: calls timed per thread (default 200000)")
    ap.add_argument("--latency-threads", type=int, default=2)
    ap.add_argument("--blocks", type=int, help="reopen: live blocks (default 10000000)")
    ap.add_argument("--reopen-mb", type=int, help="reopen: space size (default 1024)")
    ap.add_argument("--reopen-backends", default="pm-process,pm-pmem")
    ap.add_argument("--dir", default="/dev/shm" if os.access("/dev/shm", os.W_OK) else "/tmp",
                    help="where the file-backed backends put their files (default /dev/shm)")
    ap.add_argument("--results", default=os.path.join(here, "results"),
                    help="parent of the results directory (default bench/results)")
    ap.add_argument("--publish", dest="publish", action="store_true", default=None,
                    help="update the results section of bench/README.md (default for full runs)")
    ap.add_argument("--no-publish", dest="publish", action="store_false")
    ap.add_argument("--jemalloc", help="path of libjemalloc.so.2 to preload ('none': skip)")
    ap.add_argument("--mimalloc", help="path of libmimalloc.so to preload ('none': skip)")
    ap.add_argument("--buildtype", default="unknown", help=argparse.SUPPRESS)
    ap.add_argument("--invoked-as", help=argparse.SUPPRESS)
    ap.add_argument("--source", default=os.path.dirname(here), help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.find_lib:
        p = find_lib(a.find_lib)
        if p:
            print(p)
        return 0 if p else 1
    if a.replot:
        run = load(a.replot)
        if scrub(json.dumps(run.meta), os.path.dirname(here)) != json.dumps(run.meta):
            scrub_meta(run.meta, os.path.dirname(here))     # made before scrubbing
            with open(os.path.join(a.replot, "meta.json"), "w") as f:
                json.dump(run.meta, f, indent=1)
        return render(run, a.replot, here, bool(a.publish))
    if not a.pmbench:
        for cand in glob.glob(os.path.join(os.path.dirname(here), "build*", "bench", "pmbench")):
            a.pmbench = cand
            break
        if not a.pmbench:
            ap.error("--pmbench BUILD/bench/pmbench is required")
    a.pmbench = os.path.abspath(a.pmbench)

    q = a.quick
    a.threads = [int(x) for x in (a.threads or ("1,2" if q else "1,2,4,8")).split(",")]
    a.reps = a.reps or (3 if q else 5)
    a.duration = a.duration or (0.1 if q else 1.0)
    a.workloads = (a.workloads or ",".join(TPUT + EXTRA)).split(",")
    a.live_mb = a.live_mb or (16 if q else 128)
    a.frag_threads = [int(x) for x in (a.frag_threads or ("1" if q else "1,4")).split(",")]
    a.samples = a.samples or (20000 if q else 200000)
    a.blocks = a.blocks or (500000 if q else 10000000)
    a.reopen_mb = a.reopen_mb or (128 if q else 1024)
    a.reopen_backends = a.reopen_backends.split(",")
    if a.publish is None:
        a.publish = not q and not (a.workloads != TPUT + EXTRA or a.backends)
    for w in a.workloads:
        if w not in TPUT + EXTRA:
            ap.error("unknown workload %s" % w)

    run = Runner(a)
    run.backends = [b for b in ORDER if not a.backends or b in a.backends.split(",")]
    run.t_start = time.monotonic()
    started = datetime.datetime.now().astimezone()
    mach = machine()
    run.meta = {"machine": mach, "started": started.isoformat(),
                "cmdline": a.invoked_as or " ".join(shlex.quote(x) for x in sys.argv),
                "argv": " ".join(shlex.quote(x) for x in sys.argv),
                "git": git_rev(a.source), "load_before": loadavg()}

    print("persistent_mem benchmark%s — %s, %d cores, %s" % (
        " (QUICK MODE: short and noisy)" if q else "", mach["cpu"], mach["cores"],
        started.strftime("%Y-%m-%d %H:%M")), flush=True)
    if a.buildtype not in ("release", "unknown"):
        print("  WARNING: build type %s; publish numbers from a release build" % a.buildtype)
    run.probe()
    for b in run.backends:
        if b in run.skipped:
            print("  %-10s SKIPPED: %s" % (b, run.skipped[b]))
        else:
            print("  %-10s %s" % (b, run.notes.get(b) or "system malloc"))
    print("  estimated %.0f min" % (estimate(a, len(run.active)) / 60), flush=True)

    stamp = started.strftime("%Y-%m-%d_%H%M") + "_" + slug(mach["cpu"]) + "_%dc" % mach["cores"]
    out_dir = os.path.join(a.results, ("quick_" if q else "") + stamp)
    os.makedirs(out_dir, exist_ok=True)

    try:
        for w in [x for x in TPUT if x in a.workloads]:
            for t in a.threads:
                run.run_tput(w, t)
        for kind in ("frag", "frag-shift"):
            if kind in a.workloads:
                for t in a.frag_threads:
                    run.run_frag(kind, t)
        if "latency" in a.workloads:
            run.run_latency()
        if "reopen" in a.workloads:
            run.run_reopen()
    except KeyboardInterrupt:
        print("interrupted; reporting what was measured", flush=True)

    run.meta["load_after"] = loadavg()
    run.meta["finished"] = datetime.datetime.now().astimezone().isoformat()
    save(run, out_dir)
    return render(run, out_dir, here, a.publish)


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


ARG_KEYS = ["quick", "threads", "reps", "duration", "workloads", "backends", "pool_mb",
            "live_mb", "frag_threads", "samples", "latency_threads", "blocks", "reopen_mb",
            "reopen_backends", "dir", "buildtype"]


def scrub(text, top):
    """text with the source tree's path made relative: results carry no path
    of the machine they were made on."""
    top = os.path.abspath(top)
    return text.replace(top + os.sep, "").replace(top, ".")


def scrub_meta(meta, top):
    for k in ("cmdline", "argv"):
        if isinstance(meta.get(k), str):
            meta[k] = scrub(meta[k], top)


def save(run, out_dir):
    """raw.csv holds the measurements, meta.json everything else --replot needs."""
    with open(os.path.join(out_dir, "raw.csv"), "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(["workload", "backend", "threads", "rep", "metric", "value"])
        for r in run.raw:
            wr.writerow([r["workload"], r["backend"], r["threads"], r["rep"], r["metric"],
                         r["value"]])
    meta = dict(run.meta)
    scrub_meta(meta, run.args.source if hasattr(run.args, "source") else
               os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    meta.update({"args": {k: getattr(run.args, k) for k in ARG_KEYS},
                 "backends": run.backends, "skipped": run.skipped, "notes": run.notes,
                 "sources": run.sources, "reopen_info": run.reopen_info,
                 "frag_diag": run.frag_diag,
                 "failures": run.failures})
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


def load(out_dir):
    with open(os.path.join(out_dir, "meta.json")) as f:
        meta = json.load(f)
    run = Runner(argparse.Namespace(**meta["args"]))
    run.meta = meta
    run.backends = meta["backends"]
    run.skipped = meta["skipped"]
    run.notes = meta["notes"]
    run.sources = meta["sources"]
    run.reopen_info = meta["reopen_info"]
    run.frag_diag = meta.get("frag_diag", {})
    run.failures = [tuple(x) for x in meta["failures"]]
    with open(os.path.join(out_dir, "raw.csv"), newline="") as f:
        for r in csv.DictReader(f):
            run.raw.append(dict(workload=r["workload"], backend=r["backend"],
                                threads=int(r["threads"]), rep=int(r["rep"]),
                                metric=r["metric"], value=float(r["value"])))
    return run


def render(run, out_dir, here, do_publish):
    scrub_meta(run.meta, os.path.dirname(here))
    mach = run.meta["machine"]
    started = datetime.datetime.fromisoformat(run.meta["started"])
    write_summary(run, out_dir)
    text = report(run, out_dir)
    title = "persistent_mem vs peers - %s, %d cores - %s" % (
        mach["cpu"], mach["cores"], started.strftime("%Y-%m-%d"))
    err = chart(run, out_dir, title)
    print()
    print(text)
    if err:
        print("chart: " + err)
    print("results: %s (report.md, summary.csv, raw.csv, meta.json, chart.svg, chart.png)"
          % out_dir)
    if do_publish:
        publish(os.path.join(here, "README.md"), out_dir, run)
        print("bench/README.md results section updated")
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())

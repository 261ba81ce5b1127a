#!/usr/bin/env python3
"""Unmodified programs on each allocator: persistent_mem through its
LD_PRELOAD interposer (libpmpreload.so) beside glibc, jemalloc and mimalloc.

Each program runs with each allocator (alternating, --reps times); its output
must be the same as with glibc's malloc, byte for byte (hashed).  Reported:
the median wall time and its ratio to glibc's, the peak RSS (the largest of
the process tree's, from wait4), and for persistent_mem the size of its
space file at exit (the largest of the processes').

  python3 bench/realprog.py --preload BUILD/bench/libpmpreload.so [--quick]
          [--reps N] [--programs sqlite3,python3,...] [--out DIR]

--check: each available program once per allocator at the quick sizes,
outputs compared; exit status 1 on a difference or a crash (the test
realprog-check).  A program that is not installed is reported and skipped.
"""

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from runner import find_lib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PY_SCRIPT = r"""
import json, random, sys
n = int(sys.argv[1])
r = random.Random(7)
d = {}
for i in range(n):
    k = "key-%d-%s" % (i, "x" * (i % 40))
    d[k] = [r.randrange(1000) for _ in range(i % 17)] + [str(i) * (i % 5)]
items = sorted(d.items(), key=lambda kv: (len(kv[1]), kv[0]))
s = json.dumps(items)
back = json.loads(s)
words = [w for kv in back for w in kv[0].split("-")]
count = {}
for w in words:
    count[w] = count.get(w, 0) + 1
print(len(s), len(back), len(count), sum(count.values()))
print(sorted(count.items())[:5], sorted(count.items())[-5:])
"""


def sqlite_script(n):
    return """
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v INTEGER, pad TEXT);
BEGIN;
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d)
INSERT INTO t(k, v, pad) SELECT printf('k%%08d', (x * 7919) %% %d), x %% 1000,
       substr('abcdefghijklmnopqrstuvwxyz', 1 + x %% 26) FROM c;
COMMIT;
CREATE INDEX t_k ON t(k);
CREATE INDEX t_v ON t(v, k);
SELECT count(*), sum(v), count(DISTINCT k) FROM t;
SELECT v, count(*), max(k) FROM t GROUP BY v ORDER BY count(*) DESC, v LIMIT 5;
SELECT k FROM t WHERE k BETWEEN 'k00001000' AND 'k00001010' ORDER BY k;
SELECT group_concat(pad, ''), length(group_concat(k)) FROM (SELECT pad, k FROM t ORDER BY k LIMIT 2000);
DELETE FROM t WHERE v %% 3 = 0;
VACUUM;
SELECT count(*), sum(length(pad)) FROM t;
""" % (n, n)


def programs(quick, tmp):
    """name -> (argv, stdin bytes, env additions, what); sizes by quick."""
    n_sql = 20000 if quick else 200000
    n_py = 20000 if quick else 300000
    n_sort = 100000 if quick else 2000000
    sort_in = os.path.join(tmp, "sort-input")
    if not os.path.exists(sort_in):
        with open(sort_in, "w") as f:
            x = 12345
            for i in range(n_sort):
                x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
                f.write("%016x %d line %d\n" % (x, x % 997, i))
    py = shutil.which("python3", path="/usr/bin:/bin") or "python3"
    gcc_src = os.path.join(ROOT, "src", "tx.c" if quick else "verify.c")
    return {
        "sqlite3": (["sqlite3", ":memory:"], sqlite_script(n_sql).encode(), {},
                    "%d inserts, two indexes, queries, delete, vacuum (in memory)" % n_sql),
        "python3": ([py, "-c", PY_SCRIPT, str(n_py)], b"", {"PYTHONMALLOC": "malloc",
                                                            "PYTHONHASHSEED": "0"},
                    "PYTHONMALLOC=malloc: a %d-key dict, sort, json out and back" % n_py),
        "sort": (["sort", "--parallel=2", "-S", "256M", "-k2,2n", "-k1,1", sort_in], b"",
                 {"LC_ALL": "C"}, "%d lines, two keys, two threads" % n_sort),
        "gcc": (["gcc", "-O2", "-std=c11", "-I" + os.path.join(ROOT, "src"),
                 "-I" + os.path.join(ROOT, "include"), "-S", "-o", "-", gcc_src], b"",
                {"LC_ALL": "C"}, "gcc -O2 -S src/%s" % os.path.basename(gcc_src)),
        "git": (["git", "-C", ROOT, "log", "-p", "--stat", "-n", "60" if quick else "400",
                 "--no-color", "--format=%H %s"], b"", {"GIT_CONFIG_NOSYSTEM": "1",
                                                      "HOME": tmp},
                "git log -p --stat of this repository (%s commits)" % ("60" if quick else "400")),
    }


def run_once(argv, stdin, env, preload, stats):
    """(seconds, peak RSS bytes, sha256 of stdout, exit status)."""
    e = dict(os.environ)
    e.update(env)
    e.pop("LD_PRELOAD", None)
    if preload:
        e["LD_PRELOAD"] = preload
    if stats:
        e["PM_PRELOAD_STATS"] = stats
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=e)
    out, err = p.communicate(stdin)
    dt = time.monotonic() - t0
    # the children's peak RSS: the largest of any process the tree waited for
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return dt, rss, hashlib.sha256(out).hexdigest(), p.returncode, err.decode(errors="replace")


def file_size_of(stats):
    best = 0
    try:
        with open(stats) as f:
            for line in f:
                for kv in line.split():
                    k, _, v = kv.partition("=")
                    if k == "file_size":
                        best = max(best, int(v))
    except OSError:
        pass
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preload", required=True, help="libpmpreload.so")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--programs", default="sqlite3,python3,sort,gcc,git")
    ap.add_argument("--out", help="write report.md here")
    a = ap.parse_args()
    if a.check:
        a.quick, a.reps = True, 1
    preload = os.path.abspath(a.preload)
    # pm-process: the library's default (the file backed as it grows);
    # pm-lazy: PERSISTENT_OPEN_LAZY, backed when written, as a volatile
    # allocator's memory is
    allocs = [("glibc", None), ("pm-process", preload), ("pm-lazy", preload)]
    for name in ("jemalloc", "mimalloc"):
        lib = find_lib(name)
        if lib:
            allocs.insert(len(allocs) - 2, (name, lib))
        else:
            print("%s: not installed, skipped" % name)
    tmp = tempfile.mkdtemp(prefix="pm-realprog-")
    failures = 0
    rows = []
    try:
        progs = programs(a.quick, tmp)
        for name in a.programs.split(","):
            argv, stdin, env, what = progs[name]
            if shutil.which(argv[0]) is None:
                print("%s: not installed, skipped" % name)
                continue
            times = {b: [] for b, _ in allocs}
            rss = {b: 0 for b, _ in allocs}
            fsize = {b: 0 for b, _ in allocs}
            want = None
            for rep in range(a.reps):
                for b, lib in allocs:
                    stats = os.path.join(tmp, "stats") if b.startswith("pm-") else None
                    benv = dict(os.environ, **env)
                    if b == "pm-lazy":
                        benv["PM_PRELOAD_LAZY"] = "1"
                    if stats and os.path.exists(stats):
                        os.unlink(stats)
                    # a fresh process per run, so RUSAGE_CHILDREN is this run's
                    r = subprocess.run([sys.executable, __file__, "--one", b, lib or "",
                                        stats or ""] + argv, input=stdin,
                                       capture_output=True, env=benv)
                    if r.returncode != 0 or not r.stdout.startswith(b"RESULT "):
                        print("%s/%s: failed (%d): %s" % (name, b, r.returncode,
                                                          r.stderr.decode(errors="replace")[-800:]))
                        failures += 1
                        continue
                    _, dt, peak, digest, status = r.stdout.decode().split()
                    if int(status) != 0:
                        print("%s/%s: exit status %s: %s" % (name, b, status,
                                                            r.stderr.decode(errors="replace")[-800:]))
                        failures += 1
                        continue
                    if want is None:
                        want = digest
                    elif digest != want:
                        print("%s/%s: output differs from glibc's" % (name, b))
                        failures += 1
                    times[b].append(float(dt))
                    rss[b] = max(rss[b], int(peak))
                    if stats:
                        fsize[b] = max(fsize[b], file_size_of(stats))
            med = {b: statistics.median(v) for b, v in times.items() if v}
            rows.append((name, what, med, rss, fsize))
            line = "%-8s " % name + "  ".join(
                "%s %.3f s (%.2fx) %d MB" % (b, med[b], med[b] / med["glibc"], rss[b] >> 20)
                for b, _ in allocs if b in med and "glibc" in med)
            print(line + "".join("  %s file %d MB" % (b, fsize[b] >> 20) for b, _ in allocs
                                 if fsize[b]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report = render(rows, [b for b, _ in allocs], a)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "realprog.md"), "w") as f:
            f.write(report)
    print(report)
    if failures:
        print("%d failures" % failures)
    return 1 if failures else 0


def render(rows, backends, a):
    lines = ["| program | what | " + " | ".join(
        "%s s (x glibc)" % b for b in backends) + " | peak RSS MB (" + " / ".join(backends) +
        ") | pm file MB (process / lazy) |", "|" + " --- |" * (4 + len(backends))]
    for name, what, med, rss, fsize in rows:
        cells = []
        for b in backends:
            if b in med:
                cells.append("%.3f (%.2f)" % (med[b], med[b] / med["glibc"]) if b != "glibc"
                             else "%.3f" % med[b])
            else:
                cells.append("-")
        lines.append("| %s | %s | %s | %s | %s |" % (
            name, what, " | ".join(cells), " / ".join(str(rss[b] >> 20) for b in backends),
            " / ".join(str(fsize[b] >> 20) for b in backends if b.startswith("pm-"))))
    lines.append("")
    lines.append("Median of %d runs each, allocators alternating; outputs identical to "
                 "glibc's in every run.  `python3 bench/realprog.py --preload "
                 "BUILD/bench/libpmpreload.so%s`." % (a.reps, " --quick" if a.quick else ""))
    return "\n".join(lines) + "\n"


def one():
    """--one BACKEND LIB STATS ARGV...: runs ARGV once (stdin passed on) and
    prints RESULT seconds peak_rss sha256 status (BACKEND names the run in
    ps; LIB is preloaded, STATS gets the interposer's figures)."""
    lib, stats = sys.argv[3], sys.argv[4]
    argv = sys.argv[5:]
    dt, rss, digest, status, err = run_once(argv, sys.stdin.buffer.read(), {}, lib or None,
                                            stats or None)
    sys.stderr.write(err[-2000:])
    print("RESULT %.6f %d %s %d" % (dt, rss, digest, status))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        sys.exit(one())
    sys.exit(main())

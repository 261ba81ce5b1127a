#!/usr/bin/env python3
"""bench-harness: run.py end to end on a tiny run; its results carry no path
of the machine (the source and build trees' absolute paths, which meson
passes it, must not appear in any file it writes).

    harness_check.py RUN_PY PMBENCH RESULTS SOURCE_ROOT BUILD_ROOT"""
import os
import shutil
import subprocess
import sys

run_py, pmbench, results, source, build = sys.argv[1:6]
shutil.rmtree(results, ignore_errors=True)
r = subprocess.run([sys.executable, run_py, "--pmbench", pmbench, "--results", results,
                    "--workloads", "threadtest", "--backends", "glibc,pm-process",
                    "--threads", "1", "--reps", "1", "--duration", "0.1", "--no-publish",
                    "--invoked-as", "meson test -C %s --benchmark" % build],
                   capture_output=True, text=True)
print(r.stdout[-2000:], r.stderr[-2000:])
bad = 0
if r.returncode != 0:
    print("run.py exited with", r.returncode)
    bad += 1
dirs = [os.path.join(results, d) for d in os.listdir(results)] if os.path.isdir(results) else []
if len(dirs) != 1:
    print("want one results directory, got", dirs)
    bad += 1
for d in dirs:
    names = set(os.listdir(d))
    want = {"report.md", "summary.csv", "raw.csv", "meta.json"}
    if shutil.which("gnuplot"):
        want.add("chart.svg")
    if not want <= names:
        print("missing:", sorted(want - names))
        bad += 1
    for n in sorted(names):
        with open(os.path.join(d, n), "rb") as f:
            data = f.read()
        for root in {os.path.abspath(source), os.path.abspath(build)}:
            if root.encode() in data:
                print("%s carries the path %s" % (n, root))
                bad += 1
shutil.rmtree(results, ignore_errors=True)
print("%d problem(s)" % bad)
sys.exit(1 if bad else 0)

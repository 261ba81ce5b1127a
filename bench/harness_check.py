#!/usr/bin/env python3
"""bench-harness: run.py end to end on a tiny run; its results carry no path
of the machine (the source and build trees' absolute paths, which meson
passes it, must not appear in any file it writes).  Then the PMEM ceiling
(stats.pmem_ceiling) on known figures, and a tiny run of pmdk and pm-pmem
whose report must show it.

    harness_check.py RUN_PY PMBENCH RESULTS SOURCE_ROOT BUILD_ROOT"""
import csv
import json
import os
import statistics
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

# The PMEM ceiling: its arithmetic, then a run of pmdk and pm-pmem, whose
# report must carry it (both backends ran) or say why not (skipped).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats import pmem_ceiling  # noqa: E402
for args, want in [((2.2, 194.0, 1, 2), 1e3 / 194.0 / 2.2), ((2.2, 194.0, 4, 2), 2e3 / 194.0 / 2.2),
                   ((3.0, 200.0, 2, 1), 1e3 / 200.0 / 3.0), ((None, 194.0, 1, 2), None),
                   ((2.2, None, 1, 2), None)]:
    got = pmem_ceiling(*args)
    if (got is None) != (want is None) or (got is not None and abs(got - want) > 1e-9):
        print("pmem_ceiling%s = %s, want %s" % (args, got, want))
        bad += 1
r = subprocess.run([sys.executable, run_py, "--pmbench", pmbench, "--results", results,
                    "--workloads", "threadtest", "--backends", "pmdk,pm-pmem",
                    "--threads", "1", "--reps", "2", "--duration", "0.05", "--no-publish"],
                   capture_output=True, text=True)
if r.returncode != 0:
    print(r.stdout[-2000:], r.stderr[-2000:])
    print("run.py (pmdk, pm-pmem) exited with", r.returncode)
    bad += 1
dirs = [os.path.join(results, d) for d in os.listdir(results)] if os.path.isdir(results) else []
for d in dirs:
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    with open(os.path.join(d, "report.md")) as f:
        text = f.read()
    if "pmdk" in meta["skipped"] or "pm-pmem" in meta["skipped"]:
        print("ceiling not checked: %s" % meta["skipped"])
    elif (len(meta.get("persist_ns", [])) != 2 or "The PMEM ceiling:" not in text
          or "| pm-pmem / pmdk ceiling " not in text or "; ceiling " not in text):
        print("the report of pmdk and pm-pmem lacks the PMEM ceiling:\n" + text[-3000:])
        bad += 1
    else:
        # the value: PMDK's median cell over the least of the measures
        with open(os.path.join(d, "raw.csv")) as f:
            pmdk = sorted(float(r["value"]) for r in csv.DictReader(f)
                          if r["backend"] == "pmdk" and r["metric"] == "mops")
        want = "%.2f" % pmem_ceiling(statistics.median(pmdk), min(meta["persist_ns"]), 1,
                                     meta["machine"]["cores"])
        row = [ln for ln in text.splitlines() if ln.startswith("| pm-pmem / pmdk ceiling ")]
        if not row or row[0].split("|")[2].strip() != want:
            print("ceiling row %s, want %s" % (row, want))
            bad += 1
shutil.rmtree(results, ignore_errors=True)
print("%d problem(s)" % bad)
sys.exit(1 if bad else 0)

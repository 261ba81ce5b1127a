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
import datetime
import glob
import json
import os
import re
import shlex
import sys
import time

# the modules beside this file, wherever it is run from
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from report import load, render, save, scrub, scrub_meta  # noqa: E402
from runner import (EXTRA, ORDER, PRELOAD_SONAMES, TPUT, Runner, estimate,  # noqa: E402
                    find_lib, git_rev, loadavg, machine)
from stats import CEILING_WORKLOADS  # noqa: E402


def slug(s):
    s = re.sub(r"\([^)]*\)", "", s.lower())
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")
    return s[:40].strip("-")


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
        if any(w in a.workloads for w in CEILING_WORKLOADS):
            run.run_persist()
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


if __name__ == "__main__":
    sys.exit(main())

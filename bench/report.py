"""What a run leaves behind: raw.csv and meta.json (save, load; no path of
the machine in them), report.md, summary.csv and the chart (render), and the
results section of bench/README.md (publish, headline)."""

import argparse
import csv
import datetime
import json
import os

from chart import chart
from runner import EXTRA, ORDER, PM, TPUT, TPUT_DESC, Runner
from stats import (CEILING_WORKLOADS, FOOTPRINT_AIM, RATIOS, REOPEN_AIM_AT, REOPEN_AIM_MS,
                   aim_of, mops_ratio, pmem_ceiling, spread)


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


def ceiling(run, w, t):
    """What pm-pmem / pmdk would be in cell (w, t) of this run if nothing but
    its write-backs took time (stats.pmem_ceiling, with the least of the
    run's persist measures), None where that does not apply or was not
    measured."""
    if w not in CEILING_WORKLOADS or not run.persist:
        return None
    return pmem_ceiling(run.med(w, "pmdk", t, "mops"), min(run.persist), t,
                        run.meta["machine"]["cores"])


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
    ceiled = [w for w in CEILING_WORKLOADS if w in a.workloads]
    if run.persist and ceiled:
        p("")
        p("The PMEM ceiling: a store written back and fenced takes %.0f ns here (%s, the "
          "least of %d measures made right after the throughput runs, `pmbench -w persist`). "
          " Every malloc and free of pm-pmem makes at least one (G3 allows no fewer; "
          "tests/test_flushcount.c), and a call's store waits for the write-back of the "
          "call before it, so in %s pm-pmem can "
          "do about min(threads, %d cores) calls in that time at most: the row \"pm-pmem / pmdk "
          "ceiling\" is that over PMDK's throughput in the same cell, what pm-pmem / pmdk "
          "would be if nothing but the write-backs took time.  An estimate, not a bound: "
          "between calls that do other work a write-back takes less than in the measuring "
          "loop, and a cell at its ceiling may pass it by 10%% (bench/README.md)."
          % (min(run.persist), run.persist_method or "?", len(run.persist),
             ", ".join(ceiled), run.meta["machine"]["cores"]))
    misses = []
    at_ceiling = 0
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
                r = mops_ratio(run, w, num, den, t)
                c = ceiling(run, w, t) if (num, den) == ("pm-pmem", "pmdk") else None
                if r is not None and aim is not None:
                    checked += 1
                    if r < aim:
                        misses.append("%s %d thr: %s/%s = %.2f (aim %.2g%s)" % (
                            w, t, num, den, r, aim,
                            "" if c is None else "; ceiling %.2f here" % c))
                        at_ceiling += c is not None and c < aim and r >= 0.9 * c
                cells.append(fmt_ratio(r, aim))
            rows.append(["%s / %s" % (num, den)] + cells)
            if (num, den) == ("pm-pmem", "pmdk") and any(ceiling(run, w, t) is not None
                                                         for t in a.threads):
                rows.append(["pm-pmem / pmdk ceiling"] + [fmt_ratio(ceiling(run, w, t), None)
                                                         for t in a.threads])
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
          "were replacing blocks; the open recovers the space.  Killed in transactions: "
          "the same replacements each a transaction, so the open rolls some back (trying "
          "each rollback on a private mapping first).  Median (min-max) of %d." % a.reps)
        aimed = (a.reopen_mb, a.blocks) == REOPEN_AIM_AT
        if aimed:
            p("The aim, a median under %g ms, applies to the clean and killed opens; ✗ marks "
              "a miss." % REOPEN_AIM_MS)
        p("")
        header = ["backend", "clean open", "killed open", "killed in transactions",
                  "close after recovery", "check"]
        rows = []
        for b in [x for x in a.reopen_backends if x not in run.skipped]:
            def mm(k, b=b):
                nonlocal checked
                v = run.values("reopen", b, 1, k)
                if not v:
                    return "-"
                cell = "%.1f (%.1f-%.1f)" % spread(v)
                if aimed and k in ("clean_open_ms", "killed_open_ms"):
                    checked += 1
                    med = spread(v)[0]
                    if med >= REOPEN_AIM_MS:
                        misses.append("reopen: %s %s %.1f ms (aim under %g)"
                                      % (b, k.replace("_ms", "").replace("_", " "), med,
                                         REOPEN_AIM_MS))
                        cell += " ✗"
                return cell
            info = run.reopen_info.get(b, {})
            chk = "%s errors" % info.get("errors", "?") if info else "-"
            rows.append([b, mm("clean_open_ms"), mm("killed_open_ms"), mm("killed_tx_open_ms"),
                         mm("killed_close_ms"), chk])
        p(md_table(header, rows))

    p("")
    p("## Aims")
    p("")
    if checked == 0:
        p("Nothing to check.")
    elif misses:
        p("%d of %d checks miss their aim%s:" % (
            len(misses), checked,
            "" if at_ceiling == 0 else " (%d of them pm-pmem / pmdk at 0.9 of its ceiling "
            "or more, where the aim is past the ceiling: see \"The PMEM ceiling\" above)"
            % at_ceiling))
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
            med, lo, hi = spread(v)
            ratios = []
            for peer in ("glibc", "mimalloc"):
                pv = run.med(w, peer, t, m) if m == "mops" else None
                ratios.append("%.4f" % (med / pv) if pv else "")
            wr.writerow([w, b, t, m, "%.6g" % med, "%.6g" % lo, "%.6g" % hi, len(v)]
                        + ratios)


def headline(run):
    """The compact table README shows: pm-process and its ratios per cell."""
    a = run.args
    header = ["workload", "thr", "pm-process Mops/s", "/ glibc", "/ mimalloc", "/ PMDK",
              "/ Boost", "pm-pmem / PMDK"]
    rows = []
    for w in [x for x in TPUT if x in a.workloads]:
        for t in a.threads:
            pm = run.med(w, "pm-process", t, "mops")
            def r(num, den, t=t, w=w):
                return fmt_ratio(mops_ratio(run, w, num, den, t), aim_of(num, den))
            c = ceiling(run, w, t) if mops_ratio(run, w, "pm-pmem", "pmdk", t) else None
            rows.append([w, t, fmt(pm), r("pm-process", "glibc"), r("pm-process", "mimalloc"),
                         r("pm-process", "pmdk"), r("pm-process", "boost"),
                         r("pm-pmem", "pmdk") + ("" if c is None else " (ceiling %.2f)" % c)])
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
             "persistent_mem %s.  Median of %d runs per cell; ✗ marks a ratio below its aim%s."
             % (m["git"], run.args.reps,
                "" if not run.persist else "; (ceiling x): what pm-pmem / PMDK would be here "
                "if nothing but its write-backs took time, one a call (%.0f ns, "
                "%s; bench/README.md, \"The PMEM ceiling\")" % (min(run.persist),
                                                                run.persist_method or "?")),
             "", headline(run), "",
             "Everything else (all backends, memory efficiency, latency, reopen, skipped "
             "backends): [%s/report.md](%s/report.md); data in `%s/summary.csv` and "
             "`%s/raw.csv`." % (rel, rel, rel, rel),
             "", "![throughput, Mops/s, log scale](%s/chart.svg)" % rel, "", end]
    s = s[:s.index(begin)] + "\n".join(parts) + s[s.index(end) + len(end):]
    with open(readme, "w") as f:
        f.write(s)


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
                 "persist_ns": run.persist, "persist_method": run.persist_method,
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
    run.persist = meta.get("persist_ns", [])
    run.persist_method = meta.get("persist_method")
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

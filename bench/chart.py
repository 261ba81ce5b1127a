"""chart.svg and chart.png of a run: Mops/s against threads per workload on
one log scale, and the frag footprint bars; drawn by gnuplot."""

import math
import os
import shutil
import subprocess

from runner import TPUT
from stats import FOOTPRINT_AIM


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
        g.append("set title 'frag: peak footprint / peak live bytes (%d thr; aim %g)'"
                 % (a.frag_threads[0], FOOTPRINT_AIM))
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

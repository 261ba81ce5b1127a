"""Statistics of a run: the median and spread of a cell's repeated runs,
ratios between backends, and the aims those ratios are judged against."""

import statistics

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
# The workloads each of whose calls makes at least one write-back and fence
# in pm-pmem (a malloc or a free of a block; realloc in place may make
# none): pm-pmem / pmdk has a ceiling there (pmem_ceiling).
CEILING_WORKLOADS = ["threadtest", "larson", "prodcons", "mixed"]
FOOTPRINT_AIM = 1.25
# issue 13: a clean open and one after SIGKILL of a 1 GiB space of 10 M blocks
REOPEN_AIM_MS = 25.0
REOPEN_AIM_AT = (1024, 10000000)     # MiB, blocks


def aim_of(num, den):
    """The aim RATIOS sets for num / den (None: shown without an aim)."""
    for n, d, aim in RATIOS:
        if (n, d) == (num, den):
            return aim
    raise KeyError("no ratio %s / %s in RATIOS" % (num, den))


def pmem_ceiling(pmdk_mops, persist_ns, threads, cores):
    """What pm-pmem / pmdk would be if each of pm-pmem's calls took one
    store written back and fenced (persist_ns, bench/persist.c) and nothing
    else: a call's store waits for the write-back of the call before it,
    so pm-pmem makes at most min(threads, cores) / persist_ns calls a
    nanosecond, against PMDK's pmdk_mops million a second.  None if either
    is missing."""
    if not pmdk_mops or not persist_ns:
        return None
    return min(threads, cores) * 1e3 / persist_ns / pmdk_mops


def median(values):
    """The median of a cell's runs, None if it has none."""
    return statistics.median(values) if values else None


def spread(values):
    """(median, min, max) of a cell's runs; values must not be empty."""
    return statistics.median(values), min(values), max(values)


def mops_ratio(run, w, num, den, t):
    """Backend num's median Mops/s over den's in one cell, None if either is missing."""
    x, y = run.med(w, num, t, "mops"), run.med(w, den, t, "mops")
    return x / y if x and y else None

#!/usr/bin/env python3
"""Mutation testing: do the suites fail when a claim breaks?

    python3 tests/mutation/run.py                 # every mutant (mutants.py)
    python3 tests/mutation/run.py --only ID...    # some of them
    python3 tests/mutation/run.py --list          # ids, files, what they break
    python3 tests/mutation/run.py --check         # every `find` occurs once

Copies the source tree (src, include, cpp, tests, examples, tools,
meson.build, meson_options.txt) to a work directory under /tmp, configures
one gcc build there (-Dbench=false), builds it and runs the tests of the
unit, api, stress and crash suites once on the unmodified code (they must
pass; their times order the runs below, cheapest first).  Then, for each
mutant: apply it (its `find` must occur exactly once), rebuild with ninja (a
mutant that does not compile is an error in the list), and unless its
library object is byte for byte the unmodified one once debug information
is stripped (then nothing can tell them apart: "identical code"), run the
tests one at a time, cheapest first (but the test that killed the mutant
in the last full run, from results.json here, first of all: a mutant is
usually killed by the same test again, and the order decides nothing
else), each under a timeout, stopping at the first one that fails, and fails again when run once more: that test killed
it (a test that fails once and then passes is noted as flaky and the run
goes on).  A mutant no test kills survives.
The file is restored before the next mutant.

A mutant may name another build (`build`, see BUILDS): "asan" runs the api
suite under AddressSanitizer + UBSan, for mistakes only a sanitizer sees
(memory left poisoned, or poisoned too late), "valgrind" the memcheck suite
(a -Dvalgrind=enabled build under valgrind); such a build is configured and
its baseline run only when a chosen mutant needs it.

Results go to results.json and results.md (next to this script for a full
run, in the work directory for --only unless --out says otherwise).  A
mutant that mutants.py marks `equivalent` (with the reason) is reported as
such when it survives; one that is killed anyway is reported killed.

Python 3 standard library only.  Exit status: 0 when every mutant is killed
or equivalent, 1 when one survives, 2 on an error (a bad list, a failing
baseline, a mutant that does not compile).
"""
import argparse
import datetime
import filecmp
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# What a mutant's build needs: every top-level entry git tracks, but the
# benchmarks (built with -Dbench=false) and CI files.  Taken from the
# tree so a new top-level directory that meson.build reads comes along.
SKIP = {"bench", ".ci", ".gitignore", "README.md", "dev.sh"}
SUITES = ["unit", "api", "stress", "crash"]
# The builds a mutant can ask for (its `build`, "gcc" when it names none):
# meson options, the suites run, and environment for the tests.  The ASan
# build is for mistakes only a sanitizer sees (memcheck.c's poisoning);
# it is configured and its baseline run only when a chosen mutant needs it.
BUILDS = {
    "gcc": (["-Dbench=false"], SUITES, {}),
    "asan": (["-Dbench=false", "-Db_sanitize=address,undefined", "-Db_lundef=false"],
             ["api"], {"PM_STRESS_SCALE": "0.3"}),
    "valgrind": (["-Dbench=false", "-Dvalgrind=enabled"], ["memcheck"], {}),
}

sys.path.insert(0, HERE)
from mutants import MUTANTS  # noqa: E402


def log(*a):
    print(*a, flush=True)


def check_list(mutants, root):
    """Every id unique, every file present, every find there exactly once."""
    errors = []
    seen = set()
    for m in mutants:
        for k in ("id", "file", "find", "replace", "what"):
            if k not in m:
                errors.append("%s: no %s" % (m.get("id", "?"), k))
        if m["id"] in seen:
            errors.append("%s: duplicate id" % m["id"])
        seen.add(m["id"])
        path = os.path.join(root, m["file"])
        if not os.path.exists(path):
            errors.append("%s: no file %s" % (m["id"], m["file"]))
            continue
        n = open(path).read().count(m["find"])
        if n != 1:
            errors.append("%s: `find` occurs %d times in %s (must be once)"
                          % (m["id"], n, m["file"]))
        if m["find"] == m["replace"]:
            errors.append("%s: replace == find" % m["id"])
        if m.get("build", "gcc") not in BUILDS:
            errors.append("%s: no build %s" % (m["id"], m["build"]))
    return errors


def run(cmd, cwd, timeout=None, env=None):
    return subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)


def top_level():
    out = subprocess.run(["git", "-C", ROOT, "ls-files"], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    return sorted({line.split("/")[0] for line in out.splitlines()} - SKIP)


def copy_tree(work):
    src = os.path.join(work, "tree")
    os.makedirs(src)
    for name in top_level():
        s = os.path.join(ROOT, name)
        d = os.path.join(src, name)
        if os.path.isdir(s):
            shutil.copytree(s, d, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "build*"))
        else:
            shutil.copy2(s, d)
    return src


def configure(src, build, jobs, options):
    env = dict(os.environ, CC="gcc", CXX="g++")
    r = run(["meson", "setup", build] + options, cwd=src, env=env)
    if r.returncode != 0:
        sys.exit("meson setup failed:\n" + r.stdout[-4000:])
    r = run(["ninja", "-C", build, "-j", str(jobs)], cwd=src)
    if r.returncode != 0:
        sys.exit("build failed:\n" + r.stdout[-4000:])


def load_tests(build, wanted, extra_env):
    r = run(["meson", "introspect", build, "--tests"], cwd=build)
    tests = []
    for t in json.loads(r.stdout):
        suites = [s.split(":", 1)[-1] for s in t["suite"]]
        if any(s in wanted for s in suites):
            t["env"] = dict(t.get("env") or {}, **extra_env)
            tests.append(t)
    return tests


def run_test(t, build, timeout, scratch):
    """(status, seconds, output tail): status "ok", "fail", "timeout",
    or "signal N"."""
    env = dict(os.environ)
    env.update(t.get("env") or {})
    tdir = tempfile.mkdtemp(dir=scratch, prefix="t-")
    env["PM_TEST_DIR"] = tdir            # the test's space files, removed after
    t0 = time.time()
    p = subprocess.Popen(t["cmd"], cwd=t.get("workdir") or build, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, errors="replace",
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
        status = "ok" if p.returncode == 0 else "fail"
        if p.returncode == 77:
            status = "ok"                # skipped: not a verdict
        elif p.returncode < 0:
            status = "signal %d" % -p.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, _ = p.communicate()
        status = "timeout"
    finally:
        # children a killed test forked may still run: end its session
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        shutil.rmtree(tdir, ignore_errors=True)
    lines = (out or "").strip().splitlines()
    return status, time.time() - t0, "\n".join(lines[-25:])


def stripped(obj, dest):
    r = run(["objcopy", "--strip-debug", obj, dest], cwd=os.path.dirname(obj))
    return r.returncode == 0


def object_of(build, file):
    """The object file of a library source in the build tree."""
    base = file.replace("/", "_") + ".o"
    for d, _, names in os.walk(build):
        if base in names and "pm_internal" in d:
            return os.path.join(d, base)
    return None


def md_escape(s):
    return s.replace("|", "\\|").replace("\n", " ")


def write_results(results, out_dir, meta):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"meta": meta, "mutants": results}, f, indent=1)
    counts = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    lines = ["# Mutation results", "",
             "%s; %d mutants: %s; %.0f s." % (
                 meta["date"], len(results),
                 ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items())),
                 meta["seconds"]),
             "",
             "| mutant | file | what it breaks | verdict |",
             "| --- | --- | --- | --- |"]
    for r in results:
        if r["status"] == "killed":
            v = "killed by `%s`" % r["killed_by"]
            if r.get("build"):
                v += " (%s build)" % r["build"]
            if r["how"] != "fail":
                v += " (%s)" % r["how"]
        elif r["status"] == "equivalent":
            v = "equivalent: " + r.get("reason", "")
        elif r["status"] == "survived":
            v = "**survived**"
        else:
            v = "**error**: " + r.get("error", "")[:200]
        for fl in r.get("flaky", []):
            v += "; `%s` failed once (%s) and passed on a re-run" % (fl["test"], fl["how"])
        lines.append("| `%s` | %s | %s | %s |" % (
            r["id"], r["file"], md_escape(r["what"]), md_escape(v)))
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", metavar="ID", help="run these mutants")
    ap.add_argument("--list", action="store_true", help="list the mutants")
    ap.add_argument("--check", action="store_true",
                    help="check the list against the tree, build nothing")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--out", help="directory for results.json / results.md")
    ap.add_argument("--jobs", type=int, default=2, help="ninja -j (2)")
    ap.add_argument("--timeout-factor", type=float, default=5.0,
                    help="per-test timeout: this times its baseline time, "
                         "plus 30 s (5)")
    ap.add_argument("--workdir", help="work directory (default: a new one "
                                      "under /tmp)")
    a = ap.parse_args()

    mutants = MUTANTS
    if a.list:
        for m in mutants:
            log("%-32s %-18s %s" % (m["id"], m["file"], m["what"]))
        return 0
    errors = check_list(mutants, ROOT)
    if errors:
        log("mutants.py does not fit the tree:\n  " + "\n  ".join(errors))
        return 2
    if a.check:
        log("%d mutants, every `find` occurs once" % len(mutants))
        return 0
    if a.only:
        ids = {m["id"] for m in mutants}
        unknown = [i for i in a.only if i not in ids]
        if unknown:
            log("unknown mutant(s): " + " ".join(unknown))
            return 2
        mutants = [m for m in mutants if m["id"] in a.only]

    t_start = time.time()
    work = a.workdir or tempfile.mkdtemp(dir="/tmp", prefix="pm-mutation-")
    os.makedirs(work, exist_ok=True)
    log("work directory: " + work)
    scratch = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else work,
                               prefix="pm-mutation-")
    results = []
    status = 0
    try:
        src = copy_tree(work)
        # each build a chosen mutant needs: configured, built, its tests
        # run on the unmodified code (they must pass; their times order the
        # runs), and the unmodified objects kept, debug info stripped, for
        # "identical code"
        builds, base, pristine = {}, {}, {}
        for kind in sorted({m.get("build", "gcc") for m in mutants}):
            options, wanted, extra_env = BUILDS[kind]
            build = os.path.join(work, "build" if kind == "gcc" else "build-" + kind)
            log("configuring and building (%s: %s) ..." % (kind, " ".join(options)))
            configure(src, build, a.jobs, options)
            tests = load_tests(build, wanted, extra_env)
            log("baseline (%s): %d tests of suites %s" % (kind, len(tests), ", ".join(wanted)))
            for t in tests:
                st, secs, out = run_test(t, build, max(t["timeout"] or 900, 60), scratch)
                log("  %-20s %-8s %6.1f s" % (t["name"], st, secs))
                if st != "ok":
                    log("baseline failure of %s (%s) on the unmodified code:\n%s"
                        % (t["name"], kind, out))
                    return 2
                base[kind, t["name"]] = secs
            tests.sort(key=lambda t, k=kind: (base[k, t["name"]], t["name"]))
            builds[kind] = (build, tests)
            for f in sorted({m["file"] for m in mutants if m.get("build", "gcc") == kind}):
                obj = object_of(build, f)
                if obj:
                    dest = os.path.join(work, kind + "." + os.path.basename(obj) + ".orig")
                    if stripped(obj, dest):
                        pristine[kind, f] = (obj, dest)

        # the killers of the last full run (results.json next to this script)
        last = {}
        try:
            with open(os.path.join(HERE, "results.json")) as f:
                for r in json.load(f)["mutants"]:
                    if r.get("killed_by"):
                        last[r["id"]] = r["killed_by"]
        except (OSError, ValueError, KeyError):
            pass

        for i, m in enumerate(mutants):
            path = os.path.join(src, m["file"])
            orig = open(path).read()
            kind = m.get("build", "gcc")
            build, tests = builds[kind]
            t0 = time.time()
            r = {"id": m["id"], "file": m["file"], "what": m["what"]}
            if kind != "gcc":
                r["build"] = kind
            log("[%d/%d] %s (%s%s): %s" % (i + 1, len(mutants), m["id"], m["file"],
                                            "" if kind == "gcc" else ", " + kind, m["what"]))
            try:
                if orig.count(m["find"]) != 1:
                    raise RuntimeError("`find` does not occur exactly once")
                with open(path, "w") as f:
                    f.write(orig.replace(m["find"], m["replace"]))
                b = run(["ninja", "-C", build, "-j", str(a.jobs)], cwd=src)
                if b.returncode != 0:
                    raise RuntimeError("does not compile:\n" + b.stdout[-3000:])
                same = False
                if (kind, m["file"]) in pristine:
                    obj, dest = pristine[kind, m["file"]]
                    cur = os.path.join(work, "mutant.o")
                    same = stripped(obj, cur) and filecmp.cmp(cur, dest, shallow=False)
                if same:
                    r.update(status="equivalent", reason="identical code: the "
                             "library object is unchanged once debug info is stripped; "
                             + m.get("equivalent", ""))
                    log("    identical object code")
                else:
                    r["status"] = "survived"
                    first = last.get(m["id"])
                    order = sorted(tests, key=lambda t: t["name"] != first)
                    for t in order:
                        limit = a.timeout_factor * base[kind, t["name"]] + 30
                        st, secs, out = run_test(t, build, limit, scratch)
                        if st == "ok":
                            continue
                        # a kill must reproduce: a test that fails once and
                        # then passes is noted as flaky, not credited
                        st2, secs2, out2 = run_test(t, build, limit, scratch)
                        if st2 == "ok":
                            r.setdefault("flaky", []).append(
                                {"test": t["name"], "how": st, "output": out})
                            log("    %s failed (%s) and then passed: flaky, not a kill"
                                % (t["name"], st))
                            continue
                        r.update(status="killed", killed_by=t["name"], how=st,
                                 output=out)
                        log("    killed by %s (%s, %.1f s, again on a re-run)"
                            % (t["name"], st, secs))
                        break
                    if r["status"] == "survived":
                        if m.get("equivalent"):
                            r.update(status="equivalent", reason=m["equivalent"])
                            log("    survived: equivalent (%s)" % m["equivalent"])
                        else:
                            log("    SURVIVED")
            except RuntimeError as e:
                r.update(status="error", error=str(e))
                log("    ERROR: " + str(e))
            finally:
                with open(path, "w") as f:
                    f.write(orig)
            r["seconds"] = round(time.time() - t0, 1)
            results.append(r)
            if r["status"] == "survived":
                status = max(status, 1)
            if r["status"] == "error":
                status = 2

        meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
                "seconds": round(time.time() - t_start),
                "baseline": {("%s/%s" % k if k[0] != "gcc" else k[1]): v
                             for k, v in base.items()},
                "host": os.uname().nodename,
                "ncpu": os.cpu_count()}
        out_dir = a.out or (work if a.only else HERE)
        write_results(results, out_dir, meta)
        counts = {}
        for r in results:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        log("%d mutants: %s; %.0f s; results in %s" % (
            len(results), ", ".join("%d %s" % (v, k) for k, v in sorted(counts.items())),
            time.time() - t_start, out_dir))
        for r in results:
            if r["status"] in ("survived", "error"):
                log("  %s %s: %s" % (r["status"].upper(), r["id"], r["what"]))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if not a.keep and not a.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())

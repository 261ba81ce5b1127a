#!/usr/bin/env python3
"""Groups fuzzer artifacts (crash-*, timeout-*, oom-*, leak-*) by signature.

    triage.py FUZZER DIR_OR_FILES... [--json OUT]

Each input is replayed twice with the fuzzer binary:
  1. as is: the first failure is the input's signature
     (a FUZZ FINDING case with its message normalised, or a sanitizer
     error with the first frame inside src/, or a libFuzzer timeout with
     the first frame inside src/);
  2. with PM_FUZZ_IGNORE=all: every finding of the input is listed.
Prints one line per signature: count, smallest example, signature; then per
signature the other findings its inputs showed.
"""
import json
import os
import re
import subprocess
import sys

SYMBOLIZER = "/usr/lib/llvm-14/bin/llvm-symbolizer"


def norm(msg):
    msg = re.sub(r"0x[0-9a-fA-F]+", "X", msg)
    msg = re.sub(r"\b\d+\b", "N", msg)
    msg = re.sub(r"/[\w./-]*pmfuzz-[\w.-]+", "FILE", msg)
    return msg.strip()


def src_frame(lines, start):
    """First stack frame in the library sources after line index start."""
    for ln in lines[start:]:
        m = re.search(r"#\d+ 0x[0-9a-f]+ in (\S+) (\S*/src/[\w/]+\.c):(\d+)", ln)
        if m:
            return "%s %s:%s" % (m.group(1), "src/" + m.group(2).split("/src/")[-1], m.group(3))
    for ln in lines[start:]:
        m = re.search(r"#\d+ 0x[0-9a-f]+ in (\S+) (\S*/tests/fuzz/\w+\.c):(\d+)", ln)
        if m:
            return "%s %s:%s" % (m.group(1), "fuzz_space.c", m.group(3))
    return "?"


def run(fuzzer, path, ignore_all):
    env = dict(os.environ)
    env["ASAN_SYMBOLIZER_PATH"] = SYMBOLIZER
    env["ASAN_OPTIONS"] = "detect_leaks=1:allocator_may_return_null=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    if ignore_all:
        env["PM_FUZZ_IGNORE"] = "all"
    else:
        env.pop("PM_FUZZ_IGNORE", None)
    try:
        p = subprocess.run([fuzzer, "-timeout=5", "-rss_limit_mb=4096", path],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120)
        out = p.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace") + "\nHARD TIMEOUT"
    return out


def signature(out):
    lines = out.splitlines()
    findings = [norm(m.group(1) + ": " + m.group(2))
                for m in (re.search(r"FUZZ FINDING \[([\w-]+)\]: (.*)", ln) for ln in lines) if m]
    sig = None
    for i, ln in enumerate(lines):
        m = re.search(r"FUZZ FINDING \[([\w-]+)\]: (.*)", ln)
        if m and sig is None and "deadly signal" in out:
            sig = "FINDING " + norm(m.group(1) + ": " + m.group(2))
        m = re.search(r"ERROR: AddressSanitizer: ([\w-]+)", ln)
        if m and sig is None:
            kind = m.group(1)
            if kind in ("SEGV", "BUS") and "WRITE memory access" in out:
                kind += "-write"
            sig = "ASAN %s in %s" % (kind, src_frame(lines, i))
        m = re.search(r"(\S+/src/[\w/]+\.c):(\d+):\d+: runtime error: (.*)", ln)
        if m and sig is None:
            sig = "UBSAN src/%s:%s %s" % (m.group(1).split("/src/")[-1], m.group(2), norm(m.group(3)))
        if "ERROR: libFuzzer: timeout" in ln and sig is None:
            sig = "TIMEOUT in " + src_frame(lines, i)
        if "ERROR: LeakSanitizer" in ln and sig is None:
            sig = "LEAK from " + src_frame(lines, i)
        if "out-of-memory" in ln and sig is None:
            sig = "OOM"
    if sig is None:
        sig = "HARD TIMEOUT" if "HARD TIMEOUT" in out else "no failure"
    return sig, findings


def main():
    args = sys.argv[1:]
    jout = None
    if "--json" in args:
        k = args.index("--json")
        jout = args[k + 1]
        del args[k:k + 2]
    fuzzer, paths = args[0], args[1:]
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += [os.path.join(p, f) for f in sorted(os.listdir(p))
                      if re.match(r"(crash|timeout|oom|leak|slow-unit)-", f)]
        else:
            files.append(p)
    groups = {}
    for f in files:
        sig, _ = signature(run(fuzzer, f, False))
        _, allf = signature(run(fuzzer, f, True))
        g = groups.setdefault(sig, {"files": [], "also": {}})
        g["files"].append(f)
        for x in allf:
            g["also"][x] = g["also"].get(x, 0) + 1
    for sig, g in sorted(groups.items(), key=lambda kv: -len(kv[1]["files"])):
        small = min(g["files"], key=os.path.getsize)
        print("%4d  %-60s  %s" % (len(g["files"]), os.path.basename(small), sig))
        for x, c in sorted(g["also"].items(), key=lambda kv: -kv[1]):
            if "FINDING " + x != sig:
                print("          also (%d): %s" % (c, x))
    if jout:
        with open(jout, "w") as fh:
            json.dump(groups, fh, indent=1)


if __name__ == "__main__":
    main()

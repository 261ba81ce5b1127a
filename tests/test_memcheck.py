#!/usr/bin/env python3
"""memcheck: under valgrind, a persistent block is a heap block
(-Dvalgrind=enabled builds).  Runs test_memcheck in each mode under
valgrind and requires the report each bug must give, and none for clean
use.   test_memcheck.py VALGRIND TEST_MEMCHECK DIR"""
import os
import subprocess
import sys

valgrind, exe, tmp = sys.argv[1:4]
path = os.path.join(tmp, "memcheck-%d.space" % os.getpid())
want = {
    "clean": ["ERROR SUMMARY: 0 errors"],
    "uninit": ["Conditional jump or move depends on uninitialised value", "uninit"],
    "overflow": ["Invalid write of size 1", "0 bytes after a block of size 64 alloc'd",
                 "overflow"],
    "uaf": ["Invalid read of size 1", "5 bytes inside a block of size", "free'd",
            "Block was alloc'd at", "uaf"],
    "leak": ["in 1 blocks are definitely lost", "leak_one"],
    "auto": ["ERROR SUMMARY: 0 errors"],
}
# automatic transactions catch their writes by page faults, and resume the
# faulting store: valgrind must keep every register up to date at memory
# accesses for that (include/persistent_mem.h, persistent_tx_begin_auto)
extra = {"auto": ["--px-default=allregs-at-mem-access"]}
bad = 0
for mode, needles in want.items():
    r = subprocess.run([valgrind, "--error-exitcode=99", "--leak-check=full",
                        "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite",
                        "--num-callers=30"] + extra.get(mode, []) + [exe, mode, path],
                       capture_output=True, text=True)
    out = r.stdout + r.stderr
    ok = (r.returncode == 0) == (mode in ("clean", "auto"))
    for n in needles:
        ok = ok and n in out
    if mode == "leak" and out.count("definitely lost in loss record") != 1:
        ok = False                  # the block the root reaches is no leak
    if not ok:
        bad += 1
        print("---- %s: exit %d, want %s\n%s" % (mode, r.returncode,
              "0" if mode in ("clean", "auto") else "99", out[-4000:]))
    else:
        print("%s: reported as it should be" % mode)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
print("%d mode(s) wrong" % bad)
sys.exit(1 if bad else 0)

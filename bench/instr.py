#!/usr/bin/env python3
"""Instructions per malloc + free pair, by callgrind, beside the peers.

    python3 bench/instr.py --instr BUILD/bench/instr [--pairs N] [--check]

Runs bench/instr.c under `valgrind --tool=callgrind --toggle-collect=loop_*`
for each backend (persistent_mem in PROCESS mode, glibc, and jemalloc and
mimalloc LD_PRELOADed when installed) and pattern (pair, lifo, spread; see
instr.c), subtracts what the loop costs with no allocator (backend none)
and prints a Markdown table: instructions per pair and persistent_mem's
ratio to each peer.  Instruction counts do not depend on the machine's
load, so this can run beside other work; they do depend on the compiler
and the build (use a release build).  Then persistent_mem's instructions
per update of bench/txbench.c (a 64-byte record, a block allocated and
linked, the one it replaces freed) without a transaction and as one, in
PROCESS durability, and as the minimal transactions of instr.c's floor
patterns (what the transactions issue's aim of 2 is measured against).
--check: a small N, and fails unless every count is
positive, persistent_mem's lifo pair is under 1,000 and its update
transaction under 5,000."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from runner import find_lib  # noqa: E402

PATTERNS = ["pair", "lifo", "spread"]
ABOUT = {
    "pair": "malloc(64), one store, free",
    "lifo": "64 blocks of 16-128 B, freed newest first",
    "spread": "4,096 blocks of 64 B, freed oldest first",
}

UPDATES = [
    ("update", "without a transaction"),
    ("tx", "as a transaction"),
    ("floor", "floor: a minimal undo-log transaction in this log's format "
              "(nothing validated, marked or flushed)"),
    ("floor-mark", "floor, the blocks it allocates and frees marked"),
    ("floor-nocheck", "floor, entries without their checks"),
]


def count(instr, backend, pattern, pairs, env, tmp):
    """Instructions in loop_run's second run (the counted one)."""
    out = os.path.join(tmp, "cg.%s.%s" % (backend, pattern))
    cmd = ["valgrind", "--tool=callgrind", "--toggle-collect=loop_*",
           "--callgrind-out-file=" + out, instr, backend, pattern, str(pairs), tmp]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode,
                                                   r.stderr[-2000:]))
    n = int(r.stdout.split()[-1])
    total = None
    with open(out) as f:
        for line in f:
            m = re.match(r"(summary|totals):\s+(\d+)", line)
            if m:
                total = int(m.group(2))
    os.unlink(out)
    if total is None:
        raise RuntimeError("no totals in callgrind output of " + " ".join(cmd))
    return total, n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--instr", required=True, help="the instr program (bench/instr.c)")
    ap.add_argument("--pairs", type=int, default=409600)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--jemalloc", help="path of libjemalloc.so ('none' to skip)")
    ap.add_argument("--mimalloc", help="path of libmimalloc.so ('none' to skip)")
    a = ap.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind not found (apt-get install valgrind)", file=sys.stderr)
        return 77 if a.check else 1
    pairs = 16384 if a.check else a.pairs
    backends = [("persistent_mem", "pm", None), ("glibc", "libc", None)]
    skipped = []
    for peer in ("jemalloc", "mimalloc"):
        path = getattr(a, peer) or find_lib(peer)
        if path and path != "none" and os.path.exists(path):
            backends.append((peer, "libc", path))
        else:
            skipped.append(peer)
    base_env = dict(os.environ)
    base_env.pop("LD_PRELOAD", None)
    per = {}
    with tempfile.TemporaryDirectory(prefix="pm-instr-",
                                     dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        for pattern in PATTERNS:
            loop, n0 = count(a.instr, "none", pattern, pairs, base_env, tmp)
            for name, backend, preload in backends:
                env = dict(base_env)
                if preload:
                    env["LD_PRELOAD"] = preload
                total, n = count(a.instr, backend, pattern, pairs, env, tmp)
                assert n == n0
                per[name, pattern] = (total - loop) / n
    names = [b[0] for b in backends]
    peers = [x for x in names if x != "persistent_mem"]
    print("Instructions per malloc + free pair (callgrind; the loop's own "
          "instructions subtracted; %d pairs per pattern)\n" % n0)
    print("| pattern | " + " | ".join(names) + " | "
          + " | ".join("pm / " + p for p in peers) + " |")
    print("| --- |" + " ---: |" * (len(names) + len(peers)))
    for pattern in PATTERNS:
        row = ["%s (%s)" % (pattern, ABOUT[pattern])]
        row += ["%.1f" % per[x, pattern] for x in names]
        row += ["%.2f" % (per["persistent_mem", pattern] / per[p, pattern])
                if per[p, pattern] > 0 else "-" for p in peers]
        print("| " + " | ".join(row) + " |")
    if skipped:
        print("\nskipped (not installed): " + ", ".join(skipped))
    updates = 4096 if a.check else 20480
    upd = {}
    with tempfile.TemporaryDirectory(prefix="pm-instr-",
                                     dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        for pattern, _ in UPDATES:
            total, n = count(a.instr, "pm", pattern, updates, base_env, tmp)
            upd[pattern] = total / n
    print("\nInstructions per update of persistent_mem (PROCESS; the loop's own "
          "included; %d updates)\n" % updates)
    print("| the update | instructions | / without a transaction |")
    print("| --- | ---: | ---: |")
    for pattern, about in UPDATES:
        print("| %s | %.0f | %.2f |" % (about, upd[pattern], upd[pattern] / upd["update"]))
    if a.check:
        bad = [k for k, v in list(per.items()) + list(upd.items()) if v <= 0]
        if bad or per["persistent_mem", "lifo"] >= 1000 or upd["tx"] >= 5000:
            print("check failed: %s" % (bad or "lifo or transaction too high"),
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The inspector (tools/persistent-mem): its JSON output follows the schema of
docs/inspector.md, its numbers agree with each other and with what the space
holds, and its exit status says healthy / repaired / corrupt / not a space.

    test_inspector.py TOOL MAKER DIR
MAKER is tests/inspector_mk (it makes the spaces); DIR a scratch directory."""
import json
import os
import shutil
import signal
import subprocess
import sys

tool, maker, tmp = sys.argv[1:4]
failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL:", msg)


def run(*args):
    p = subprocess.run([tool, *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


try:
    subprocess.run([tool, "flush"], capture_output=True, check=False)
    subprocess.run([maker], capture_output=True, check=False)
except OSError as e:          # a cross build with no way to run its programs
    print("skipped:", e)
    sys.exit(77)


def js(cmd, path, want_status=0):
    rc, out, err = run(cmd, "--json", path)
    if rc != want_status:
        fail(f"{cmd} --json {path}: exit {rc}, want {want_status} ({err.strip()})")
    try:
        obj = json.loads(out)
    except ValueError as e:
        fail(f"{cmd} --json: not JSON ({e}): {out[:200]!r}")
        return {}
    if obj.get("schema") != 1 or obj.get("command") != cmd or obj.get("file") != path:
        fail(f"{cmd} --json: schema, command or file wrong: {obj}")
    return obj


def make(mode, name):
    path = os.path.join(tmp, name)
    subprocess.run([maker, mode, path], check=True)
    return path


def need(obj, key, kind):
    if not isinstance(obj.get(key), kind) or isinstance(obj.get(key), bool) != (kind is bool):
        fail(f"{obj.get('command')}: {key} is {obj.get(key)!r}, want a {kind.__name__}")
        return False
    return True


healthy = make("healthy", "insp-healthy.space")

info = js("info", healthy)
for k in ("created_ns", "file_size", "capacity", "max_capacity", "metadata",
          "page_size", "superblock_size", "generation"):
    need(info, k, int)
for k in ("growable", "clean"):
    need(info, k, bool)
if info.get("clean") is not True or info.get("durability") != "process-crash":
    fail(f"info: {info}")
if not info.get("bases") or not all({"generation", "base", "size"} <= set(b)
                                    for b in info["bases"]):
    fail(f"info: bases {info.get('bases')}")

check = js("check", healthy)
if check.get("status") != "healthy" or check.get("errors") != 0 or check.get("first_error") is not None:
    fail(f"check: {check}")
for k in ("runs", "superblocks", "large_runs", "live_blocks", "live_bytes", "roots",
          "pending_remote_frees", "in_flight_lanes", "open_transactions", "crash_leftovers"):
    need(check, k, int)
if check.get("roots") != 2:
    fail(f"check: {check.get('roots')} roots, want 2")

stats = js("stats", healthy)
page = stats.get("page_size", 0)
fr = stats.get("free_runs", {})
by = fr.get("by_length", [])
if sum(b["count"] for b in by) != fr.get("count"):
    fail(f"stats: the buckets do not add up to the runs: {fr}")
if fr.get("pages", 0) * page != stats.get("free_bytes"):
    fail(f"stats: free runs hold {fr.get('pages')} pages, free_bytes {stats.get('free_bytes')}")
for b in by:
    hi = b["max_pages"] if b["max_pages"] is not None else float("inf")
    if not (b["min_pages"] <= hi and b["count"] > 0):
        fail(f"stats: bucket {b}")
largest = fr.get("largest", 0)
if not any(b["min_pages"] <= largest <= (b["max_pages"] or largest) for b in by):
    fail(f"stats: the largest run ({largest}) is in no bucket")
# the freed middle block of three of 20 pages: a run of 20 free pages
if not any(b["min_pages"] <= 20 <= (b["max_pages"] or 20) for b in by):
    fail(f"stats: no free run of 20 pages: {by}")
classes = {c["block_size"]: c for c in stats.get("classes", [])}
c48 = next((c for bs, c in sorted(classes.items()) if bs >= 48), None)
if c48 is None or c48["live_blocks"] < 50 or not (0 < c48["fill"] <= 1) or \
        abs(c48["fill"] - c48["live_blocks"] / c48["capacity_blocks"]) > 1e-3:
    fail(f"stats: the 48-byte class: {c48}")
if sum(c["live_blocks"] for c in classes.values()) + stats["large"]["runs"] != stats["live_blocks"]:
    fail("stats: classes' live blocks and large runs do not add up to live_blocks")
if stats.get("live_blocks") != check.get("live_blocks"):
    fail(f"stats and check disagree on live blocks: {stats.get('live_blocks')} "
         f"{check.get('live_blocks')}")

roots = js("roots", healthy)
tags = {r["tag"]: r for r in roots.get("roots", [])}
if set(tags) != {"0x6b657931", "0xfedcba9876543210"} or tags["0x6b657931"]["size"] < 64 \
        or tags["0xfedcba9876543210"]["size"] < 4000:
    fail(f"roots: {roots}")

# the text forms still work, and stats draws its charts
rc, out, _ = run("stats", healthy)
if rc != 0 or "free page runs" not in out or "|" not in out:
    fail(f"stats (text): exit {rc}: {out}")

# a space not closed: info says so, recover repairs it (1), then it is clean (0)
dirty = make("dirty", "insp-dirty.space")
if js("info", dirty).get("clean") is not False:
    fail("info: a space left open says clean")
rc, out, _ = run("recover", dirty)
if rc != 1 or "recovered" not in out:
    fail(f"recover of a dirty space: exit {rc}, {out!r}")
rc, _, _ = run("recover", dirty)
if rc != 0:
    fail(f"recover of a clean space: exit {rc}")
js("check", dirty)

# damaged metadata: 4, and the JSON says why
corrupt = make("corrupt", "insp-corrupt.space")
bad = js("check", corrupt, 4)
if bad.get("status") != "corrupt" or not bad.get("first_error") and not bad.get("error"):
    fail(f"check of a damaged space: {bad}")
rc, _, _ = run("check", corrupt)
if rc != 4:
    fail(f"check (text) of a damaged space: exit {rc}")

# not a space, and no file at all: 8
garbage = make("garbage", "insp-garbage.space")
for path in (garbage, os.path.join(tmp, "insp-none.space")):
    for cmd in ("info", "check", "stats", "roots"):
        obj = js(cmd, path, 8)
        if obj.get("status") != "not-a-space" or not isinstance(obj.get("code"), int):
            fail(f"{cmd} of {path}: {obj}")

# copy: of a healthy space (then the same roots), of a dirty one (the copy
# recovered), never over a file, of a damaged space (4, nothing left), of
# something that is not a space (8)
def copy(src, name, want):
    dst = os.path.join(tmp, name)
    rc, out, err = run("copy", src, dst)
    if rc != want:
        fail(f"copy {src}: exit {rc}, want {want} ({out.strip()} {err.strip()})")
    return dst, out


healthy = make("healthy", "insp-healthy.space")
dst, _ = copy(healthy, "insp-copy.space", 0)
if js("check", dst).get("status") != "healthy" or js("roots", dst).get("roots") != js("roots", healthy).get("roots"):
    fail("copy: the copy is not the space")
copy(healthy, "insp-copy.space", 16)                  # exists already
os.unlink(dst)
dirty = make("dirty", "insp-dirty.space")
dst, out = copy(dirty, "insp-copy.space", 0)
if "recovered" not in out or js("info", dst).get("clean") is not True:
    fail(f"copy of a dirty space: {out!r}")
if js("info", dirty).get("clean") is not False:
    fail("copy changed the source")
os.unlink(dst)
corrupt = make("corrupt", "insp-corrupt.space")
dst, _ = copy(corrupt, "insp-copy.space", 4)
if os.path.exists(dst) or any(n.startswith("insp-copy.space.") for n in os.listdir(tmp)):
    fail("copy of a damaged space left files")
copy(garbage, "insp-copy.space", 8)

# copy's failures name the destination the user gave, never the temporary
# file copy writes beside it and deletes (NEW.PID.tmp), and leave nothing:
# no directory, a parent that is a file, a copy larger than RLIMIT_FSIZE
# allows (SIGXFSZ must not kill it before it cleans up), a read-only
# directory (not as root), a source that is not a space or is damaged
import resource


def copy_fails(src, dst, why, **kw):
    p = subprocess.run([tool, "copy", src, dst], capture_output=True, text=True, **kw)
    d = os.path.dirname(dst)
    left = [n for n in os.listdir(d) if n.startswith(os.path.basename(dst))] \
        if os.path.isdir(d) else []
    if p.returncode <= 0 or dst not in p.stderr or ".tmp" in p.stderr or \
            len(p.stderr.splitlines()) != 1 or left:
        fail(f"copy {why}: exit {p.returncode}, stderr {p.stderr.strip()!r}, left {left}; "
             f"want a failure naming {dst} and nothing left")
    for n in left:
        os.unlink(os.path.join(d, n))


def small_files():
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))


copy_fails(healthy, os.path.join(tmp, "insp-nodir", "insp-copy.space"), "into no directory")
copy_fails(healthy, os.path.join(healthy, "insp-copy.space"), "under a file")
copy_fails(healthy, os.path.join(tmp, "insp-copy.space"), "past RLIMIT_FSIZE",
           preexec_fn=small_files)
copy_fails(garbage, os.path.join(tmp, "insp-copy.space"), "of no space")
copy_fails(corrupt, os.path.join(tmp, "insp-copy.space"), "of a damaged space")
if os.geteuid() != 0:
    ro = os.path.join(tmp, "insp-ro")
    os.mkdir(ro, 0o555)
    try:
        copy_fails(healthy, os.path.join(ro, "insp-copy.space"), "into a read-only directory")
    finally:
        os.rmdir(ro)

# a copy killed (SIGKILL) while it writes leaves nothing in NEW's directory:
# its bytes go to an unnamed file there (O_TMPFILE), not to NEW.PID.tmp,
# which a kill left behind.  Killed as soon as it holds a file of that
# directory open besides the source; a copy done before that is tried again.
big = make("big", "insp-big.space")
kdst = os.path.join(tmp, "insp-killed.space")
before = sorted(os.listdir(tmp))
seen = False
for attempt in range(5):
    p = subprocess.Popen([tool, "copy", big, kdst], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    while p.poll() is None and not seen:
        try:
            links = [os.readlink(f"/proc/{p.pid}/fd/{n}") for n in os.listdir(f"/proc/{p.pid}/fd")]
        except OSError:
            continue
        if any(l.startswith(tmp + "/") and l != big for l in links):
            seen = True
            p.send_signal(signal.SIGKILL)
    p.wait()
    if seen:
        break
    if os.path.exists(kdst):
        os.unlink(kdst)
if not seen:
    print("copy killed while writing: never caught it writing (5 tries)")
else:
    left = sorted(set(os.listdir(tmp)) - set(before))
    if p.returncode != -signal.SIGKILL or left:
        fail(f"copy killed while writing: status {p.returncode}, left {left}; want nothing left")
    for n in left:
        os.unlink(os.path.join(tmp, n))
os.unlink(big)

# a file name that is not UTF-8: the JSON still parses, and the name comes
# back byte for byte (bytes outside UTF-8 as \udcXX, Python's
# surrogateescape); a well-formed multi-byte name passes through
for raw in (b"insp-bad\xffname\xc3\xa9.space", b"insp-\xe2\x82\xac.space"):
    bpath = os.path.join(os.fsencode(tmp), raw)
    shutil.copyfile(healthy, bpath)
    p = subprocess.run([os.fsencode(tool), b"info", b"--json", bpath], capture_output=True)
    try:
        obj = json.loads(p.stdout.decode("utf-8", "surrogatepass"))
        if p.returncode != 0 or os.fsencode(obj.get("file")) != bpath or obj.get("clean") is not True:
            fail(f"info --json of {bpath!r}: exit {p.returncode}, {obj}")
    except (ValueError, UnicodeError) as e:
        fail(f"info --json of {bpath!r}: not JSON ({e}): {p.stdout[:200]!r}")
    os.unlink(bpath)

# a FIFO with nobody at the other end: refused at once (8) by every
# command, never waited on (a review found them hanging)
fifo = os.path.join(tmp, "insp-fifo")
os.mkfifo(fifo)
for args in (["info", fifo], ["check", "--json", fifo], ["copy", fifo, os.path.join(tmp, "insp-copy.space")]):
    try:
        p = subprocess.run([tool, *args], capture_output=True, text=True, timeout=10)
        if p.returncode != 8:
            fail(f"{args[0]} of a FIFO: exit {p.returncode}, want 8 ({p.stderr.strip()})")
    except subprocess.TimeoutExpired:
        fail(f"{args[0]} of a FIFO: hung")
os.unlink(fifo)

# copy of a space a writer is changing all the time: every copy is whole
livepath = os.path.join(tmp, "insp-live.space")
w = subprocess.Popen([maker, "live", livepath], stdout=subprocess.PIPE, text=True)
try:
    if w.stdout.readline().strip() != "ready":
        fail("the live writer did not start")
    for i in range(4):
        dst, out = copy(livepath, "insp-copy.space", 0)
        if "while a writer had it open" not in out:
            fail(f"copy of a live space: {out!r}")
        if js("check", dst).get("status") != "healthy":
            fail("copy of a live space: not healthy")
        os.unlink(dst)
finally:
    w.kill()
    w.wait()
os.unlink(livepath)

# info says the durability the file records, not the view's own (a
# helper's hunt: every space was "process-crash")
for mode, want in (("pmem", "pmem"), ("sync", "sync-points")):
    dpath = make(mode, f"insp-{mode}.space")
    obj = js("info", dpath)
    if obj.get("durability") != want:
        fail(f"info of a {mode} space: durability {obj.get('durability')!r}, want {want!r}")
    rc, out, _ = run("info", dpath)
    if f"durability    {want} (recorded)" not in out:
        fail(f"info of a {mode} space: {out!r}")
    os.unlink(dpath)

# dump reads the file, not the mapping: on tmpfs a read fault on a hole
# of a shared mapping allocates the page (a helper's hunt: a dump of a
# space growable to 1 TiB grew its file on disk from 1.7 to 99 MB, and on a
# full tmpfs died of SIGBUS), and the README says the views fill no hole
shm = "/dev/shm"
if os.path.isdir(shm) and os.access(shm, os.W_OK):
    sparse = os.path.join(shm, f"insp-sparse-{os.getpid()}.space")
    try:
        subprocess.run([maker, "sparse", sparse], check=True)
        fd = os.open(sparse, os.O_RDONLY)
        try:
            hole = os.lseek(fd, 0, os.SEEK_HOLE)
        finally:
            os.close(fd)
        size = os.stat(sparse).st_size
        if hole + 65536 > size:
            fail(f"sparse space: no hole of 64 KiB ({hole} of {size})")
        else:
            before = os.stat(sparse).st_blocks
            rc, out, err = run("dump", sparse, str(hole), "65536")
            after = os.stat(sparse).st_blocks
            if rc != 0 or out.count("\n") != 4096:
                fail(f"dump of a hole: exit {rc}, {out.count(chr(10))} lines ({err.strip()})")
            if after != before:
                fail(f"dump of a hole filled it: {before} -> {after} blocks of 512 bytes")
            if any(ln.split("  ")[1].strip() != "00 " * 15 + "00" for ln in out.splitlines()[:4]):
                fail(f"dump of a hole: not zeros: {out.splitlines()[:2]}")
        # and copy keeps the holes (a copy of a 1.7 MB space took 98 MB)
        scopy = sparse + ".copy"
        rc, _, err = run("copy", sparse, scopy)
        if rc != 0:
            fail(f"copy of a sparse space: exit {rc} ({err.strip()})")
        else:
            a, b = os.stat(sparse), os.stat(scopy)
            if b.st_size != a.st_size or b.st_blocks > 2 * a.st_blocks + 256:
                fail(f"copy of a sparse space: {a.st_size} bytes in {a.st_blocks} blocks "
                     f"became {b.st_size} in {b.st_blocks}")
            rc, _, err = run("check", scopy)
            if rc != 0:
                fail(f"copy of a sparse space: check exit {rc} ({err.strip()})")
    finally:
        for f in (sparse, sparse + ".copy"):
            if os.path.exists(f):
                os.unlink(f)

# the output lost (a full disk, a closed stdout, a pipe nobody reads with
# SIGPIPE ignored): exit 8 and one line on stderr that says so, whatever the
# command found -- not 0 with the verdict gone (a helper's hunt: `info
# FILE > /dev/full` exited 0)
def lost(args, label, **kw):
    p = subprocess.run([tool, *args], stderr=subprocess.PIPE, text=True, **kw)
    lines = p.stderr.splitlines()
    if p.returncode != 8 or len(lines) != 1 or "standard output" not in lines[0]:
        fail(f"{' '.join(args)} {label}: exit {p.returncode}, want 8 and one line "
             f"on stderr ({p.stderr.strip()!r})")
    return p


healthy = make("healthy", "insp-healthy.space")
base = hex(js("info", healthy).get("bases", [{"base": 0}])[0]["base"] + 4096)
lostcopy = os.path.join(tmp, "insp-copy.space")
printing = [["info", healthy], ["check", healthy], ["stats", healthy], ["roots", healthy],
            ["ptr", healthy, base], ["dump", healthy, "0", "4096"], ["recover", healthy],
            ["flush"], ["check", corrupt], ["copy", healthy, lostcopy]] + \
           [[c, "--json", p] for c in ("info", "check", "stats", "roots") for p in (healthy, garbage)]
if os.path.exists("/dev/full"):
    for args in printing + [["dump", healthy, "0", str(os.path.getsize(healthy))]]:
        with open("/dev/full", "w") as full:
            p = lost(args, "> /dev/full", stdout=full)
        if "No space left" not in p.stderr:
            fail(f"{args[0]} > /dev/full: the cause is not said: {p.stderr.strip()!r}")
        if args[0] == "copy":      # done, its line lost: the copy is there
            if not os.path.exists(lostcopy):
                fail("copy > /dev/full: no copy")
            else:
                os.unlink(lostcopy)
# stdout closed: the same; a command that wrote nothing to it keeps its status
for args in (["info", healthy], ["check", "--json", healthy], ["flush"]):
    lost(args, ">&-", preexec_fn=lambda: os.close(1))
open(lostcopy, "w").close()
p = subprocess.run([tool, "copy", healthy, lostcopy], stderr=subprocess.PIPE, text=True,
                   preexec_fn=lambda: os.close(1))
if p.returncode != 16:
    fail(f"copy onto a file with stdout closed: exit {p.returncode}, want 16 ({p.stderr.strip()})")
os.unlink(lostcopy)
# a pipe whose reader is gone: SIGPIPE as usual (killed, silent) ...
for ignore in (False, True):
    for args in (["info", healthy], ["check", "--json", healthy], ["dump", healthy, "0", "1048576"]):
        r, w = os.pipe()
        os.close(r)
        pre = (lambda: signal.signal(signal.SIGPIPE, signal.SIG_IGN)) if ignore else None
        if ignore:      # ... or, with SIGPIPE ignored, EPIPE: 8 and one line
            p = lost(args, "| (closed), SIGPIPE ignored", stdout=w, preexec_fn=pre)
            if "Broken pipe" not in p.stderr:
                fail(f"{args[0]} into a closed pipe: the cause is not said: {p.stderr.strip()!r}")
        else:
            p = subprocess.run([tool, *args], stdout=w, stderr=subprocess.PIPE, text=True)
            if p.returncode != -signal.SIGPIPE or p.stderr:
                fail(f"{args[0]} into a closed pipe: exit {p.returncode}, want SIGPIPE "
                     f"({p.stderr.strip()!r})")
        os.close(w)

# usage: 16
for args in ([], ["info"], ["bogus", healthy], ["dump", "--json", healthy, "0"]):
    rc, _, _ = run(*args)
    if rc != 16:
        fail(f"usage {args}: exit {rc}, want 16")

# a number argument is a whole number or a usage error that names it (dump
# FILE abc dumped offset 0, dump FILE 0 12x 12 bytes, dump FILE -1 the
# range check's message); the good forms still work
for args, what in ((["dump", healthy, "abc"], "OFF"), (["dump", healthy, "0", "12x"], "LEN"),
                   (["dump", healthy, "-1"], "OFF"), (["dump", healthy, ""], "OFF"),
                   (["dump", healthy, "0", "99999999999999999999999"], "LEN"),
                   (["ptr", healthy, "zz"], "ADDR"), (["ptr", healthy, base, "1q"], "GEN")):
    rc, out, err = run(*args)
    if rc != 16 or out or f"{what}: not a number" not in err:
        fail(f"number {args[2:]}: exit {rc}, stdout {out[:40]!r}, stderr {err.strip()!r}")
for args, lines in ((["dump", healthy, "0x10", "32"], 2), (["dump", healthy, "16", "0x20"], 2)):
    rc, out, err = run(*args)
    if rc != 0 or out.count("\n") != lines:
        fail(f"number {args[2:]}: exit {rc}, {out.count(chr(10))} lines ({err.strip()})")

for name in ("healthy", "dirty", "corrupt", "garbage", "copy"):
    try:
        os.unlink(os.path.join(tmp, f"insp-{name}.space"))
    except FileNotFoundError:
        pass
print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)

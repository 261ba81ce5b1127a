#!/bin/sh
# examples/cpp_todo across restarts: each run is a new process that finds
# the list through its root and changes it.  Usage: example_todo.sh EXE
set -eu
exe=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/pm-todo-XXXXXX")
trap 'rm -rf "$dir"' EXIT
f="$dir/todo.space"

expect() {   # expect PATTERN OUTPUT
    printf '%s\n' "$2" | grep -q -- "$1" || {
        printf 'expected "%s" in:\n%s\n' "$1" "$2"
        exit 1
    }
}

out=$("$exe" "$f" add buy milk)
expect 'run 1, .*1 task(s)' "$out"
out=$("$exe" "$f" add write a longer task text than fits in a short string)
expect 'run 2, .*2 task(s)' "$out"
out=$("$exe" "$f" done 1)
expect '1 \[x\] buy milk' "$out"
expect '2 \[ \] write a longer task text than fits in a short string' "$out"
for i in 3 4 5 6 7 8 9 10; do
    "$exe" "$f" add "task number $i" >/dev/null
done
out=$("$exe" "$f" rm 2)
expect 'run 12, .*9 task(s)' "$out"
out=$("$exe" "$f" list)
expect 'run 13, .*9 task(s)' "$out"
expect '1 \[x\] buy milk' "$out"
expect '10 \[ \] task number 10' "$out"
if printf '%s\n' "$out" | grep -q 'longer task'; then
    echo "removed task is still listed"
    exit 1
fi
if "$exe" "$f" done 42 2>/dev/null; then
    echo "done on a missing task succeeded"
    exit 1
fi
echo "cpp_todo: 13 runs, list intact"

#!/bin/sh
# examples/bank killed again and again: after every SIGKILL the next open
# rolls back the transfer in flight and the total is what it began with.
# Usage: example_bank.sh EXE [KILLS]
set -eu
exe=$1
kills=${2:-20}
dir=$(mktemp -d "${TMPDIR:-/tmp}/pm-bank-XXXXXX")
trap 'rm -rf "$dir"' EXIT
f="$dir/bank.space"
"$exe" "$f" 0.2 4 >/dev/null
i=0
while [ "$i" -lt "$kills" ]; do
    "$exe" "$f" 10 4 >/dev/null &
    pid=$!
    # 20..300 ms of transfers, then SIGKILL
    sleep "0.$(( (i * 37) % 28 + 2 ))"
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    "$exe" "$f" check || { echo "kill $i: the total changed"; exit 1; }
    i=$((i + 1))
done
echo "$kills kills, the total never changed"

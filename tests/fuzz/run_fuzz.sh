#!/bin/sh
# Runs the space fuzzer (see README.md).
#
#   run_fuzz.sh replay FUZZER CORPUS_DIR
#       every file of CORPUS_DIR once through the harness
#   run_fuzz.sh short FUZZER CORPUS_DIR WORK_DIR [SECONDS]
#       fuzzes a copy of CORPUS_DIR (in WORK_DIR/corpus) for SECONDS (60);
#       crash inputs go to WORK_DIR/artifacts
#
# libFuzzer exits with 77 on a crash by default, which meson reads as SKIP:
# every failure is mapped to exit status 1 here.
set -eu
mode=$1
fuzzer=$2
corpus=$3
flags="-error_exitcode=1 -timeout_exitcode=1 -oom_exitcode=1 -rss_limit_mb=4096"
case $mode in
replay)
    # shellcheck disable=SC2086
    exec "$fuzzer" $flags -timeout=30 "$corpus"/*
    ;;
short)
    work=$4
    secs=${5:-60}
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/artifacts"
    cp "$corpus"/* "$work/corpus/"
    # shellcheck disable=SC2086
    exec "$fuzzer" $flags -timeout=10 -max_len=1048576 -max_total_time="$secs" \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus"
    ;;
*)
    echo "usage: $0 replay|short FUZZER CORPUS_DIR [WORK_DIR [SECONDS]]" >&2
    exit 2
    ;;
esac

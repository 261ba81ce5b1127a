#!/bin/bash
# Runs Ralloc's four benchmark drivers on Ralloc and on persistent_mem,
# alternating the two, REPS times per cell (default 3), and prints a
# markdown table of medians; raw results go to a CSV.
#
# usage: run.sh [REPS]
# env:
#   BIN_DIR   the OUT_DIR given to build.sh (default: ./out next to this script)
#   CSV       raw results file (default: BIN_DIR/results-<UTC time>.csv)
#   LOG_DIR   each run's output (default: BIN_DIR/logs-<UTC time>)
#   SMOKE=1   tiny arguments, only to check that everything runs (numbers
#             mean nothing); also runs under nice -n 10
#   NICE      command prefix for each run (default empty; "nice -n 10" with SMOKE)
#   CELLS     a subset of cells, e.g. CELLS="larson:2 prod-con:4"
#
# Cells and command lines are those of Ralloc's test/*-single.sh defaults:
#   larson_test 30 64 400 1000 10000 123 T          (ops/s, higher is better)
#   threadtest_test T 10000 100000 0 8              (s)
#   prod-con_test T 10000000 64                     (s; even T only)
#   sh6bench_test < "100000 64 400 T"               (TSC cycles / 2e9)
# Heap files are removed before and after every run: Ralloc's
# /dev/shm/test_{basemd,desc,sb} (fixed names, so do not run two of these at
# once) and persistent_mem's space in a directory this script makes under
# /dev/shm.
set -uo pipefail

REPS=${1:-3}
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "usage: run.sh [REPS]" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
BIN_DIR=${BIN_DIR:-$HERE/out}
[[ -d $BIN_DIR ]] || { echo "run.sh: no directory $BIN_DIR (run build.sh first, or set BIN_DIR)" >&2; exit 1; }
BIN_DIR=$(cd "$BIN_DIR" && pwd)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
CSV=${CSV:-$BIN_DIR/results-$STAMP.csv}
LOG_DIR=${LOG_DIR:-$BIN_DIR/logs-$STAMP}
SMOKE=${SMOKE:-0}
if [[ $SMOKE == 1 ]]; then NICE=${NICE-nice -n 10}; else NICE=${NICE:-}; fi

ALLOCS="ralloc persistent_mem"
for a in $ALLOCS; do
    for d in larson threadtest prod-con sh6bench; do
        [[ -x $BIN_DIR/$a/${d}_test ]] || { echo "run.sh: missing $BIN_DIR/$a/${d}_test (run build.sh)" >&2; exit 1; }
    done
done

RALLOC_FILES="/dev/shm/test_basemd /dev/shm/test_desc /dev/shm/test_sb"
for f in $RALLOC_FILES; do
    [[ -e $f ]] && echo "run.sh: removing stale $f" >&2
done
SPACE_DIR=$(mktemp -d /dev/shm/pm-ralloc-cmp.XXXXXX) || exit 1
RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pm-ralloc-cmp-run.XXXXXX") || exit 1
cleanup() { rm -f $RALLOC_FILES; rm -rf "$SPACE_DIR" "$RUN_DIR"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
clean_heaps() { rm -f $RALLOC_FILES "$SPACE_DIR"/space; }
mkdir -p "$LOG_DIR"

# driver threads -> command line (args after the binary), stdin for sh6bench
if [[ $SMOKE == 1 ]]; then
    larson_args()     { echo "1 64 400 1000 1000 123 $1"; }
    threadtest_args() { echo "$1 100 10000 0 8"; }
    prodcon_args()    { echo "$1 100000 64"; }
    sh6_input()       { printf '1000\n64\n400\n%s\n' "$1"; }
else
    larson_args()     { echo "30 64 400 1000 10000 123 $1"; }
    threadtest_args() { echo "$1 10000 100000 0 8"; }
    prodcon_args()    { echo "$1 10000000 64"; }
    sh6_input()       { printf '100000\n64\n400\n%s\n' "$1"; }
fi

CELLS=${CELLS:-"larson:1 larson:2 larson:4 threadtest:1 threadtest:2 threadtest:4
prod-con:2 prod-con:4 sh6bench:1 sh6bench:2 sh6bench:4"}

unit_of() {
    case $1 in
        larson) echo "ops/s" ;;
        sh6bench) echo "TSC cycles / 2e9" ;;
        *) echo "s" ;;
    esac
}

# one run; prints the driver's result value, or NA
run_one() {
    local alloc=$1 drv=$2 t=$3 rep=$4 bin log rc val
    bin=$BIN_DIR/$alloc/${drv}_test
    log=$LOG_DIR/$drv-$t-$alloc-$rep.out
    clean_heaps
    case $drv in
        larson)     (cd "$RUN_DIR" && PM_SPACE=$SPACE_DIR/space $NICE "$bin" $(larson_args "$t")) >"$log" 2>&1 ;;
        threadtest) (cd "$RUN_DIR" && PM_SPACE=$SPACE_DIR/space $NICE "$bin" $(threadtest_args "$t")) >"$log" 2>&1 ;;
        prod-con)   (cd "$RUN_DIR" && PM_SPACE=$SPACE_DIR/space $NICE "$bin" $(prodcon_args "$t")) >"$log" 2>&1 ;;
        sh6bench)   (cd "$RUN_DIR" && sh6_input "$t" | PM_SPACE=$SPACE_DIR/space $NICE "$bin") >"$log" 2>&1 ;;
    esac
    rc=$?
    clean_heaps
    # the parsing of Ralloc's *-single.sh scripts
    case $drv in
        larson)   val=$(awk '/Throughput/ {print $3; exit}' "$log") ;;
        sh6bench) val=$(awk '/rdtsc time/ {print $3; exit}' "$log") ;;
        *)        val=$(awk '/Time elapsed/ {print $4; exit}' "$log") ;;
    esac
    [[ $rc -eq 0 && -n $val ]] || {
        echo "run.sh: $alloc $drv T=$t rep $rep failed (exit $rc), see $log" >&2
        val=NA
    }
    echo "$drv,$t,$alloc,$rep,$val,$(unit_of "$drv"),$rc" >>"$CSV"
    echo "$val"
}

echo "driver,threads,allocator,rep,value,unit,exit_code" >"$CSV"
echo "run.sh: REPS=$REPS SMOKE=$SMOKE bins=$BIN_DIR csv=$CSV logs=$LOG_DIR" >&2
for cell in $CELLS; do
    drv=${cell%%:*} t=${cell#*:}
    for ((rep = 1; rep <= REPS; rep++)); do
        for a in $ALLOCS; do
            v=$(run_one "$a" "$drv" "$t" "$rep")
            echo "  $drv T=$t $a rep $rep: $v" >&2
        done
    done
done

median() { # values on stdin, NA skipped
    grep -v '^NA$' | sort -g | awk '{v[NR]=$1} END {
        if (NR == 0) print "NA";
        else if (NR % 2) print v[(NR+1)/2];
        else printf "%.10g\n", (v[NR/2] + v[NR/2+1]) / 2 }'
}

echo
[[ $SMOKE == 1 ]] && echo "SMOKE RUN: tiny arguments, the numbers below mean nothing."
echo "| driver | threads | Ralloc | persistent_mem | unit | persistent_mem / Ralloc (> 1: ahead) |"
echo "| --- | ---: | ---: | ---: | --- | ---: |"
for cell in $CELLS; do
    drv=${cell%%:*} t=${cell#*:}
    mr=$(awk -F, -v d="$drv" -v t="$t" '$1==d && $2==t && $3=="ralloc" {print $5}' "$CSV" | median)
    mp=$(awk -F, -v d="$drv" -v t="$t" '$1==d && $2==t && $3=="persistent_mem" {print $5}' "$CSV" | median)
    awk -v d="$drv" -v t="$t" -v r="$mr" -v p="$mp" -v u="$(unit_of "$drv")" 'BEGIN {
        if (d == "larson") {
            fr = (r == "NA") ? "NA" : sprintf("%.1f M", r / 1e6);
            fp = (p == "NA") ? "NA" : sprintf("%.1f M", p / 1e6);
            q = (r == "NA" || p == "NA" || r == 0) ? "NA" : sprintf("%.2f", p / r);
        } else {
            fr = (r == "NA") ? "NA" : sprintf("%.2f", r);
            fp = (p == "NA") ? "NA" : sprintf("%.2f", p);
            q = (r == "NA" || p == "NA" || p == 0) ? "NA" : sprintf("%.2f", r / p);
        }
        printf "| %s | %s | %s | %s | %s | %s |\n", d, t, fr, fp, u, q }'
done
echo
echo "For the timed drivers the ratio is Ralloc's time over persistent_mem's; for larson, persistent_mem's ops/s over Ralloc's.  Medians of $REPS runs each, the two alternating.  Raw: $CSV"

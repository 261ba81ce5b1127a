#!/bin/sh
# The two commands of README.md.
#
#   ./dev.sh demo   install what is missing, build, run the demo twice
#   ./dev.sh test   install what is missing, then build and run every test
#                   suite with gcc (-Werror), under ASan+UBSan, under TSan,
#                   and build everything with clang (-Werror)
#
# Missing Debian packages are installed with apt-get (as root, or through
# sudo).  Build trees go to build/ (override with BUILD=dir).
set -eu
cd "$(dirname "$0")"
BUILD=${BUILD:-build}

need() {   # need PACKAGE TEST-COMMAND...
    pkg=$1
    shift
    "$@" >/dev/null 2>&1 || missing="$missing $pkg"
}

install_missing() {
    missing=""
    need meson command -v meson
    need ninja-build command -v ninja
    need gcc command -v gcc
    need g++ command -v g++
    need pkg-config command -v pkg-config
    need libatomic-ops-dev test -f /usr/include/atomic_ops.h
    if [ "${1:-}" = test ]; then
        need clang command -v clang
        need libboost-dev test -d /usr/include/boost/container
        need libpmemobj-dev test -f /usr/include/libpmemobj.h
        need libjemalloc-dev test -f /usr/include/jemalloc/jemalloc.h
        need libmimalloc-dev test -f /usr/include/mimalloc.h
        need gnuplot-nox command -v gnuplot
    fi
    [ -z "$missing" ] && return 0
    echo "installing:$missing"
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "please install:$missing" >&2
            exit 1
        }
        sudo=sudo
    fi
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    $sudo apt-get install -y -q $missing >/dev/null ||
        { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q $missing >/dev/null; }
}

setup() {   # setup DIR [meson options...]
    dir=$1
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson setup --reconfigure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
}

case "${1:-}" in
demo)
    install_missing demo
    setup "$BUILD" --buildtype=release
    ninja -C "$BUILD" examples/demo examples/cpp_todo tools/persistent-mem >/dev/null
    file=$(mktemp -u "${TMPDIR:-/tmp}/persistent-mem-demo-XXXXXX.space")
    "$BUILD/examples/demo" "$file"
    "$BUILD/examples/demo" "$file"
    rm -f "$file"
    ;;
test)
    install_missing test
    echo "== gcc, -Werror: all suites"
    setup "$BUILD-gcc" --werror
    ninja -C "$BUILD-gcc"
    meson test -C "$BUILD-gcc" --print-errorlogs
    echo "== AddressSanitizer + UndefinedBehaviorSanitizer: all suites"
    setup "$BUILD-asan" -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false
    ninja -C "$BUILD-asan"
    PM_STRESS_SCALE=0.3 meson test -C "$BUILD-asan" --print-errorlogs
    echo "== ThreadSanitizer: the multithreaded suites"
    setup "$BUILD-tsan" -Db_sanitize=thread -Db_lundef=false -Dbench=false
    ninja -C "$BUILD-tsan"
    # without ASLR: TSan's shadow layout does not fit every randomised mapping
    PM_STRESS_SCALE=0.2 setarch "$(uname -m)" -R \
        meson test -C "$BUILD-tsan" --print-errorlogs --suite stress --suite api --suite crash-mt --suite cpp
    echo "== clang, -Werror: build everything, run the unit suite"
    CC=clang CXX=clang++ setup "$BUILD-clang" --werror
    ninja -C "$BUILD-clang"
    meson test -C "$BUILD-clang" --print-errorlogs --suite unit --suite api
    echo "== all passed"
    ;;
*)
    echo "usage: $0 demo|test" >&2
    exit 2
    ;;
esac

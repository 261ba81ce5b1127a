#!/bin/sh
# The two commands of README.md.
#
#   ./dev.sh demo   install what is missing, build, run the demo twice
#   ./dev.sh test   install what is missing, then build and run every test
#                   suite with gcc (-Werror), under ASan+UBSan, under TSan,
#                   the memcheck suite under valgrind (-Dvalgrind=enabled),
#                   build everything with clang (-Werror), and cross-build
#                   for aarch64 to run the unit and api suites under QEMU
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
    if [ "${1:-}" = test ]; then
        need clang command -v clang
        need scdoc command -v scdoc
        need valgrind command -v valgrind
        need libboost-dev test -d /usr/include/boost/container
        need libpmemobj-dev test -f /usr/include/libpmemobj.h
        need libjemalloc-dev test -f /usr/include/jemalloc/jemalloc.h
        need libmimalloc-dev test -f /usr/include/mimalloc.h
        need gnuplot-nox command -v gnuplot
        need sqlite3 command -v sqlite3
        need git command -v git
        need gcc-aarch64-linux-gnu command -v aarch64-linux-gnu-gcc
        need g++-aarch64-linux-gnu command -v aarch64-linux-gnu-g++
        need libc6-dev-arm64-cross test -f /usr/aarch64-linux-gnu/include/stdio.h
        need qemu-user command -v qemu-aarch64
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

# A qemu-aarch64 that can run DC CVAP.  QEMU before 8.1 reports DCPOP in
# HWCAP in user mode but treats DC CVAP as undefined (SIGILL), and Debian 12
# has 7.2: then the qemu-user package of this release's backports suite is
# unpacked into DIR, with apt keeping its own lists there (nothing is
# installed or configured on the machine).  Prints the directory to put
# first in PATH, nothing when the installed qemu-aarch64 will do.
aarch64_qemu() {   # aarch64_qemu DIR
    case $1 in
    /*) dir=$1 ;;
    *) dir=$PWD/$1 ;;   # apt takes relative paths from /etc/apt
    esac
    # shellcheck disable=SC2046
    set -- $(qemu-aarch64 --version 2>/dev/null |
        sed -n '1s/.* version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
    if [ "${1:-0}" -gt 8 ] || { [ "${1:-0}" -eq 8 ] && [ "${2:-0}" -ge 1 ]; }; then
        return 0
    fi
    if [ ! -x "$dir/usr/bin/qemu-aarch64" ]; then
        codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release)
        # shellcheck disable=SC2016
        uri=$(apt-get indextargets --format '$(REPO_URI)' 'Created-By: Packages' \
            "Release: $codename" | head -n 1)
        rm -rf "$dir"
        mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial"
        echo "deb $uri $codename-backports main" >"$dir/apt/sources.list"
        set -- -o Dir::Etc::SourceList="$dir/apt/sources.list" \
            -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists="$dir/apt/lists" \
            -o Dir::Cache="$dir/apt/cache" -o APT::Sandbox::User=root
        echo "fetching qemu-user from $codename-backports (QEMU >= 8.1 runs DC CVAP)" >&2
        if ! { apt-get "$@" -q update >/dev/null &&
            (cd "$dir/apt" && apt-get "$@" -q download "qemu-user/$codename-backports" >/dev/null) &&
            dpkg-deb --fsys-tarfile "$dir"/apt/qemu-user_*.deb |
            tar -x -C "$dir" ./usr/bin/qemu-aarch64; }; then
            rm -rf "$dir"
            return 1
        fi
        rm -rf "$dir/apt"
    fi
    echo "$dir/usr/bin"
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
    echo "== valgrind memcheck: persistent blocks are heap blocks to memcheck"
    setup "$BUILD-valgrind" -Dvalgrind=enabled -Dbench=false --werror
    ninja -C "$BUILD-valgrind" tests/test_memcheck
    meson test -C "$BUILD-valgrind" --no-rebuild --print-errorlogs --suite memcheck
    echo "== clang, -Werror: build everything, run the unit, api and fuzz suites"
    CC=clang CXX=clang++ setup "$BUILD-clang" --werror
    ninja -C "$BUILD-clang"
    meson test -C "$BUILD-clang" --print-errorlogs --suite unit --suite api --suite fuzz
    echo "== aarch64 (cross, qemu-user): unit and api suites"
    # Debian's cross compilers; the tests run under qemu-aarch64 -cpu max
    # (cross/aarch64-linux-gnu.ini), a CPU with DC CVAP, which the library
    # must then choose and run.  No Boost: meson would take the build
    # machine's headers.
    cross=cross/aarch64-linux-gnu.ini cpu=max want=dc_cvap adir=$BUILD-aarch64
    if qemu=$(aarch64_qemu "$BUILD-aarch64-qemu"); then
        PATH=$qemu${qemu:+:}$PATH
    else
        # no QEMU that runs DC CVAP to be had: a CPU without it, so the
        # library takes msync; DC CVAP is still compiled, not executed
        echo "WARNING: no qemu-aarch64 >= 8.1 (from backports): DC CVAP is" \
            "compiled but not run; the suites run on a CPU without it" >&2
        cpu=cortex-a57 want=msync adir=$BUILD-aarch64-a57
        mkdir -p "$adir-cross"
        cross=$adir-cross/aarch64-$cpu.ini
        sed "s/'-cpu', 'max'/'-cpu', '$cpu'/" cross/aarch64-linux-gnu.ini >"$cross"
    fi
    setup "$adir" --cross-file "$cross" --werror -Dbench=false -Dboost=disabled
    ninja -C "$adir"
    method=$(qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu $cpu "$adir/tools/persistent-mem" flush)
    [ "$method" = "$want" ] || {
        echo "aarch64: the library chose '$method', not $want" >&2
        exit 1
    }
    # tests that exec their own executable skip themselves (exit 77) where
    # that cannot work: qemu-user without a binfmt_misc handler
    # PM_UNDER_QEMU: tests whose forked child starts a thread skip that part
    # (qemu-user's forked child hung in its first calls now and then)
    PM_UNDER_QEMU=1 meson test -C "$adir" --no-rebuild --print-errorlogs --suite unit --suite api
    echo "== all passed"
    ;;
*)
    echo "usage: $0 demo|test" >&2
    exit 2
    ;;
esac

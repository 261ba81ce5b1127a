#!/bin/sh
# The library as users get it: installed with a pkg-config file, and as a
# meson subproject.  Usage: packaging.sh SOURCE_ROOT BUILD_ROOT [SANITIZE]
# SANITIZE is the build's b_sanitize: an instrumented library needs the
# user's program built with the same sanitizers.
set -eu
src=$1
build=$2
san=${3:-none}
sanflags=
[ "$san" = none ] || sanflags="-fsanitize=$san"
command -v pkg-config >/dev/null || { echo "SKIP: no pkg-config"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pm-packaging-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/user.c" <<'C'
#include <persistent_mem.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
    allocator_space_t *s = create_persistent_allocator(argv[argc - 1], 1 << 20);
    if (!s) { fprintf(stderr, "%s\n", persistent_errormsg()); return 1; }
    char *r = persistent_find_root(s, 1);
    if (!r) { r = persistent_malloc_root(s, 1, 16); strcpy(r, "installed"); }
    int ok = strcmp(r, "installed") == 0;
    destroy_persistent_allocator(s);
    return ok ? 0 : 1;
}
C

# 1. installed: headers, library and pkg-config file under a DESTDIR
meson install -C "$build" --destdir "$tmp/root" --no-rebuild >/dev/null
pc=$(find "$tmp/root" -name persistent_mem.pc | head -n 1)
[ -n "$pc" ] || { echo "persistent_mem.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_SYSROOT_DIR="$tmp/root"
cc -std=c11 -Wall -Werror $sanflags $(pkg-config --cflags persistent_mem) "$tmp/user.c" \
   -o "$tmp/user" $(pkg-config --libs persistent_mem)
libdir=$(dirname "$(find "$tmp/root" -name 'libpersistent_mem.so' | head -n 1)")
space="$tmp/user.space"
LD_LIBRARY_PATH="$libdir" "$tmp/user" "$space"
LD_LIBRARY_PATH="$libdir" "$tmp/user" "$space"
if [ -f "$src/cpp/persistent_ptr.hpp" ]; then
    printf '#include <persistent_ptr.hpp>\n#include <persistent_space.hpp>\n#include <persistent_allocator.hpp>\nint main(void) { return 0; }\n' > "$tmp/user.cpp"
    c++ -std=c++17 -Wall -Werror $sanflags $(pkg-config --cflags persistent_mem) "$tmp/user.cpp" \
        -o "$tmp/usercpp" $(pkg-config --libs persistent_mem)
fi
# the manual pages, where scdoc built them
if command -v scdoc >/dev/null; then
    for page in man3/persistent_mem.3 man1/persistent-mem.1; do
        [ -n "$(find "$tmp/root" -path "*/man/$page")" ] || { echo "$page was not installed"; exit 1; }
    done
fi
echo "installed: pkg-config build works"

# 2. as a meson subproject
mkdir -p "$tmp/proj/subprojects"
ln -s "$src" "$tmp/proj/subprojects/persistent_mem"
cp "$tmp/user.c" "$tmp/proj/user.c"
cat > "$tmp/proj/meson.build" <<'M'
project('user', 'c', default_options : ['c_std=c11'])
pm = dependency('persistent_mem', fallback : ['persistent_mem', 'persistent_mem_dep'],
                default_options : ['tests=false', 'bench=false'])
executable('user', 'user.c', dependencies : pm)
M
meson setup "$tmp/proj/b" "$tmp/proj" --wrap-mode=forcefallback >/dev/null
ninja -C "$tmp/proj/b" >/dev/null
"$tmp/proj/b/user" "$tmp/sub.space"
echo "subproject: build works"

#!/usr/bin/env bash
# Installs libsessionkeeper (shared and static), include/sessionkeeper.h and
# sessionkeeper.pc under PREFIX, so that
#     PKG_CONFIG_PATH=PREFIX/lib/pkgconfig cc app.c $(pkg-config --cflags --libs sessionkeeper)
# works (for /usr/local the pkg-config path is already searched; run ldconfig
# after installing there). For another prefix, run the program with
# LD_LIBRARY_PATH=PREFIX/lib, or link with -Wl,-rpath,PREFIX/lib.
#
# Usage: scripts/install-c.sh [--debug] [--no-build] PREFIX
#   --debug     install the debug build (target/debug) instead of a release build
#   --no-build  install what cargo already built; do not run cargo
# Environment: LIBDIR (default PREFIX/lib), DESTDIR (staging root for packagers),
#              CARGO_TARGET_DIR (default <repo>/target).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

profile=release
build=1
while (($#)); do
  case $1 in
    --debug) profile=debug; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "install-c: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || { echo "usage: scripts/install-c.sh [--debug] [--no-build] PREFIX" >&2; exit 2; }
prefix=$1
case $prefix in /*) ;; *) prefix="$(pwd)/$prefix" ;; esac
libdir=${LIBDIR:-$prefix/lib}
dest=${DESTDIR:-}

if [ $build -eq 1 ]; then
  if [ $profile = release ]; then
    cargo build --manifest-path "$repo/Cargo.toml" -p sessionkeeper-c --release
  else
    cargo build --manifest-path "$repo/Cargo.toml" -p sessionkeeper-c
  fi
fi

target=${CARGO_TARGET_DIR:-$repo/target}/$profile
version=$(sed -n 's/^#define SESSIONKEEPER_HEADER_VERSION "\(.*\)"$/\1/p' "$repo/include/sessionkeeper.h")
[ -n "$version" ] || { echo "install-c: no version in include/sessionkeeper.h" >&2; exit 1; }
major=${version%%.*}
for f in "$target/libsessionkeeper.so" "$target/libsessionkeeper.a"; do
  [ -f "$f" ] || { echo "install-c: $f is missing; build first (or drop --no-build)" >&2; exit 1; }
done

install -d "$dest$libdir/pkgconfig" "$dest$prefix/include"
# The soname is libsessionkeeper.so.<major> (set in bindings/c/build.rs).
install -m 0755 "$target/libsessionkeeper.so" "$dest$libdir/libsessionkeeper.so.$version"
ln -sf "libsessionkeeper.so.$version" "$dest$libdir/libsessionkeeper.so.$major"
ln -sf "libsessionkeeper.so.$major" "$dest$libdir/libsessionkeeper.so"
install -m 0644 "$target/libsessionkeeper.a" "$dest$libdir/libsessionkeeper.a"
install -m 0644 "$repo/include/sessionkeeper.h" "$dest$prefix/include/sessionkeeper.h"
sed -e "s|@PREFIX@|$prefix|g" -e "s|@LIBDIR@|$libdir|g" -e "s|@VERSION@|$version|g" \
  "$repo/bindings/c/sessionkeeper.pc.in" >"$dest$libdir/pkgconfig/sessionkeeper.pc"
echo "install-c: installed libsessionkeeper $version ($profile) into $dest$prefix"

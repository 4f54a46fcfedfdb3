#!/usr/bin/env bash
# The C library's tests (issue 6): builds libsessionkeeper once (debug),
# fails when include/sessionkeeper.h drifted from what cbindgen generates,
# then, against standalone Redis and the Cluster, runs the C harness
# (tests/c) linked straight against the build, under valgrind, linked
# through the installed pkg-config file, and linked statically; and the PHP
# FFI interop test (tests/php) against sessions written by the Rust engine.
# Prints one line per step and "test-c: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$repo/.tmp/c
target=${CARGO_TARGET_DIR:-$repo/target}/debug
CFLAGS=(-std=c11 -Wall -Wextra -Werror -pedantic -g)

results=()
failed=0
step() { # name command... : runs one step, records its result, never exits
  local name=$1 t0 rc
  shift
  echo "--- $name"
  t0=$(date +%s)
  set +e
  "$@"
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    results+=("ok    $name ($(($(date +%s) - t0))s)")
  else
    results+=("FAIL  $name (exit $rc)")
    failed=$((failed + 1))
  fi
  return 0
}

summary() {
  echo
  echo "=== test-c summary ==="
  printf '%s\n' "${results[@]}"
  echo "test-c: $((${#results[@]} - failed)) passed, $failed failed"
  [ $failed -eq 0 ]
}

# --- run inside scripts/with-redis.sh (SK_REDIS_URL, SK_CLUSTER_URL set) ---------------
if [ "${1:-}" = "--with-redis" ]; then
  export SK_REQUIRE_REDIS=1
  harness=(timeout 300)
  # The fork test's child deliberately leaks the parent's runtime (core/src/runtime.rs);
  # it reports through a pipe, and --child-silent-after-fork keeps its leak report out.
  grind=(timeout 900 valgrind --quiet --error-exitcode=1 --leak-check=full --child-silent-after-fork=yes
    --errors-for-leak-kinds=definite,possible --suppressions=tests/c/valgrind.supp --num-callers=40)
  step "C harness (shared library)" "${harness[@]}" "$work/test_shared"
  step "C harness under valgrind" "${grind[@]}" "$work/test_shared"
  step "C harness built with pkg-config" "${harness[@]}" "$work/test_pkgconfig"
  step "C harness linked statically" "${harness[@]}" "$work/test_static"
  php_interop() { # url: Rust writes, PHP reads and writes back, Rust verifies
    local url=$1 rust_id php_id
    rust_id=$(timeout 60 "$target/examples/interop_peer" write "$url") || return 1
    php_id=$(timeout 120 php -n -d extension=ffi -d ffi.enable=1 tests/php/interop.php \
      "$target/libsessionkeeper.so" "$repo/include/sessionkeeper.h" "$url" "$rust_id") || return 1
    timeout 60 "$target/examples/interop_peer" verify "$url" "$rust_id" "$php_id"
  }
  step "README example (standalone)" timeout 60 "$work/readme_example" "$SK_REDIS_URL"
  step "PHP FFI interop (standalone)" php_interop "$SK_REDIS_URL"
  step "PHP FFI interop (cluster)" php_interop "$SK_CLUSTER_URL"
  printf '%s\n' "${results[@]}" >"$work/redis-steps.txt"
  exit $failed
fi

# --- outside: setup, build, header check, compile, then the Redis steps -----------------
started=$(date +%s)
scripts/setup.sh
mkdir -p "$work"
rm -f "$work/redis-steps.txt"

echo "--- cargo build -p sessionkeeper-c (debug, with the interop peer)"
timeout 1500 cargo build -p sessionkeeper-c --lib --example interop_peer

header_fresh() {
  # build.rs just regenerated include/sessionkeeper.h: it must equal the committed one.
  if ! git cat-file -e HEAD:include/sessionkeeper.h 2>/dev/null; then
    echo "include/sessionkeeper.h is not committed" >&2
    return 1
  fi
  git diff --exit-code HEAD -- include/sessionkeeper.h || {
    echo "include/sessionkeeper.h drifted from bindings/c/src: commit the regenerated header" >&2
    return 1
  }
}
step "header matches cbindgen output" header_fresh

compile() {
  # The shared library's soname is libsessionkeeper.so.0; give the build the
  # link names a linker and the loader look for.
  mkdir -p "$work/lib"
  ln -sf "$target/libsessionkeeper.so" "$work/lib/libsessionkeeper.so"
  ln -sf "$target/libsessionkeeper.so" "$work/lib/libsessionkeeper.so.0"
  cc "${CFLAGS[@]}" -Iinclude tests/c/test_sessionkeeper.c -o "$work/test_shared" \
    -L"$work/lib" -lsessionkeeper -lpthread -Wl,-rpath,"$work/lib"
}
step "compile C harness against target/debug" compile

readme_example() {
  # bindings/c/README.md's first example, as written, in a main() that gives
  # it the test's Redis URL and a session id (one with no session: the
  # example must compile cleanly and run either way).
  local block
  block=$(awk '/^```c$/ { inside = 1; next } inside && /^```$/ { exit } inside' bindings/c/README.md)
  grep -qF '"redis://127.0.0.1:6379"' <<<"$block" || {
    echo "the README example's URL changed: update scripts/test-c.sh" >&2
    return 1
  }
  {
    printf '#include <stdbool.h>\n#include <stdint.h>\n#include <stdio.h>\n#include "sessionkeeper.h"\n'
    printf 'int main(int argc, char **argv) {\n    const char *cookie_id = "%s";\n    if (argc < 2) return 2;\n' "$(printf 'r%.0s' {1..40})"
    sed 's|"redis://127.0.0.1:6379"|argv[1]|' <<<"$block"
    printf '    sessionkeeper_store_free(store);\n    return 0;\n}\n'
  } >"$work/readme_example.c"
  cc "${CFLAGS[@]}" -Iinclude "$work/readme_example.c" -o "$work/readme_example" \
    -L"$work/lib" -lsessionkeeper -lpthread -Wl,-rpath,"$work/lib"
}
step "compile the README example" readme_example

pkgconfig_build() {
  rm -rf "$work/prefix"
  scripts/install-c.sh --debug --no-build "$work/prefix" || return 1
  export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
  local libdir
  libdir=$(pkg-config --variable=libdir sessionkeeper) || return 1
  # shellcheck disable=SC2046 # pkg-config output is meant to be word-split
  cc "${CFLAGS[@]}" tests/c/test_sessionkeeper.c -o "$work/test_pkgconfig" \
    $(pkg-config --cflags --libs sessionkeeper) -lpthread -Wl,-rpath,"$libdir" || return 1
  # ldd's output is captured before grep: with pipefail, `ldd | grep -q` fails
  # whenever grep exits at its match before ldd has written its last line.
  local deps
  deps=$(ldd "$work/test_pkgconfig") || return 1
  grep -qF "$libdir/libsessionkeeper.so.0" <<<"$deps" || {
    echo "test_pkgconfig does not load the installed library" >&2
    return 1
  }
  # Static: the archive plus what `pkg-config --static` adds (Libs.private).
  # shellcheck disable=SC2046
  cc "${CFLAGS[@]}" tests/c/test_sessionkeeper.c -o "$work/test_static" $(pkg-config --cflags sessionkeeper) \
    "$libdir/libsessionkeeper.a" $(pkg-config --static --libs-only-l sessionkeeper | sed 's/-lsessionkeeper//') || return 1
  deps=$(ldd "$work/test_static") || return 1
  if grep -q libsessionkeeper <<<"$deps"; then
    echo "test_static is not statically linked" >&2
    return 1
  fi
}
step "install into a prefix; compile with pkg-config (shared and static)" pkgconfig_build

if [ $failed -eq 0 ]; then
  set +e
  timeout 1800 scripts/with-redis.sh standalone cluster -- "$0" --with-redis
  set -e
  if [ -f "$work/redis-steps.txt" ]; then
    mapfile -t redis_steps <"$work/redis-steps.txt"
    results+=("${redis_steps[@]}")
    failed=$((failed + $(grep -c '^FAIL' "$work/redis-steps.txt" || true)))
  else
    results+=("FAIL  Redis steps did not run (topologies failed to start?)")
    failed=$((failed + 1))
  fi
else
  results+=("skip  Redis steps (an earlier step failed)")
fi

echo "test-c: took $(($(date +%s) - started))s"
summary

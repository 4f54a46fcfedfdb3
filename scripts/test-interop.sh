#!/usr/bin/env bash
# Cross-language interop (issue 7, first slice): every binding (Ruby, Python,
# Node, C) writes one golden session holding every value type, and every
# binding reads each of them back and is compared field by field with
# docs/types.md; Ruby, Python and Node save different keys of one session
# concurrently and nothing is lost; each binding's refusals are checked. On
# standalone Redis and the Cluster. Reuses the debug builds the other parts'
# test scripts made (and builds them the same way when missing).
# Prints "interop: N passed, M failed"; exits non-zero when anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
started=$SECONDS

scripts/setup.sh

export SK_PORT_BASE=${SK_PORT_BASE:-17500}
export SK_REDIS_DIR=${SK_REDIS_DIR:-$repo/.tmp/redis-interop}
target=${CARGO_TARGET_DIR:-$repo/target}/debug
work=$repo/.tmp/interop-scratch
mkdir -p "$work/lib"

# Ruby: the extension as scripts/test-ruby.sh builds it (cargo is a no-op when fresh).
echo "--- interop: Ruby extension (debug)"
timeout 1200 cargo build -p sessionkeeper-ruby
so=ruby/lib/sessionkeeper/sessionkeeper_ruby.so
if ! cmp -s "$target/libsessionkeeper_ruby.so" "$so"; then
  # Copy then rename: overwriting a library another process has mapped could crash it.
  cp "$target/libsessionkeeper_ruby.so" "$so.$$.tmp"
  mv "$so.$$.tmp" "$so"
fi

# Python: the venv and package scripts/test-python.sh installs; installed only when missing.
venv=$repo/python/.venv
if ! (cd "$work" && "$venv/bin/python" -c 'import sessionkeeper' 2>/dev/null); then
  echo "--- interop: installing the Python package (debug) into $venv"
  [ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
  MATURIN_PEP517_ARGS="--profile dev" timeout 900 "$venv/bin/pip" install -q --disable-pip-version-check \
    --no-deps --force-reinstall ./python
fi

# Node: the addon as scripts/test-node.sh builds it (no npm dependencies needed here).
echo "--- interop: Node addon (debug)"
(cd node && timeout 1500 node scripts/build-native.js >/dev/null)

# C: the library as scripts/test-c.sh builds it, and the peer compiled like its harness.
echo "--- interop: C library (debug) and C peer"
timeout 1500 cargo build -p sessionkeeper-c --lib --example interop_peer
ln -sf "$target/libsessionkeeper.so" "$work/lib/libsessionkeeper.so"
ln -sf "$target/libsessionkeeper.so" "$work/lib/libsessionkeeper.so.0"
cc -std=c11 -Wall -Wextra -Werror -pedantic -g -Iinclude tests/interop/peer.c -o "$work/peer_c" \
  -L"$work/lib" -lsessionkeeper -lpthread -Wl,-rpath,"$work/lib"

export SK_INTEROP_PYTHON=$venv/bin/python SK_INTEROP_C=$work/peer_c
status=0
timeout 600 scripts/with-redis.sh standalone cluster -- python3 tests/interop/matrix.py || status=$?
echo "test-interop: $([ "$status" -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - started))s"
exit "$status"

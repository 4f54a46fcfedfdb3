#!/usr/bin/env bash
# Makes what the shared-login apps and drivers need, each step a no-op when
# already fresh (scripts/test-e2e.sh and scripts/demo.sh run it):
#   - the Ruby extension, built as scripts/test-ruby.sh builds it (debug) and
#     placed in ruby/lib/sessionkeeper/ (copy then rename: a running Ruby may
#     have the old one mapped);
#   - the Node addon, as scripts/test-node.sh builds it (node/sessionkeeper.node);
#   - a venv (.tmp/e2e/venv) with Flask, gunicorn and `pip install ./python`
#     (debug, as scripts/test-python.sh does), reinstalled only when the
#     Python package or the Rust code changed;
#   - tests/e2e/node_modules (express, express-session, puppeteer-core) from
#     its package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
target=${CARGO_TARGET_DIR:-$repo/target}/debug
work=$repo/.tmp/e2e
venv=$work/venv
mkdir -p "$work"

t0=$SECONDS
echo "--- e2e build: Ruby extension (debug)"
timeout 1500 cargo build -q -p sessionkeeper-ruby
so=ruby/lib/sessionkeeper/sessionkeeper_ruby.so
if ! cmp -s "$target/libsessionkeeper_ruby.so" "$so"; then
  cp "$target/libsessionkeeper_ruby.so" "$so.$$.tmp"
  mv "$so.$$.tmp" "$so"
fi

echo "--- e2e build: Node addon (debug)"
(cd node && timeout 1500 node scripts/build-native.js >/dev/null)

echo "--- e2e build: Python venv and package (debug)"
[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
want=$(sha256sum tests/e2e/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  timeout 600 "$venv/bin/pip" install -q --disable-pip-version-check -r tests/e2e/requirements.txt
  echo "$want" >"$venv/.requirements.sha256"
fi
# Everything the installed package is built from.
src=$(find python/pyproject.toml python/sessionkeeper bindings/python core/src core/Cargo.toml Cargo.toml Cargo.lock \
  -type f -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ "$(cat "$venv/.sessionkeeper.sha256" 2>/dev/null)" != "$src" ] ||
  ! (cd "$work" && "$venv/bin/python" -c 'import sessionkeeper' 2>/dev/null); then
  MATURIN_PEP517_ARGS="--profile dev" timeout 900 "$venv/bin/pip" install -q --disable-pip-version-check \
    --no-deps --force-reinstall ./python
  echo "$src" >"$venv/.sessionkeeper.sha256"
fi

echo "--- e2e build: npm packages for the Express app and the browser driver"
if [ ! -f tests/e2e/node_modules/.package-lock.json ] ||
  [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
  (cd tests/e2e && timeout 600 npm ci --no-audit --no-fund)
fi
echo "--- e2e build: done in $((SECONDS - t0))s"

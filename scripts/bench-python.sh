#!/usr/bin/env bash
# The Python benchmark (bench/python/README.md): Flask and Django with our
# session store against Flask-Session, Django's cache backend on django-redis
# and on Django's RedisCache, and both frameworks' signed-cookie sessions, in
# one process, on one private Redis. Not a test: never run by CI.
#
# Builds our package in RELEASE into its own venv (bench/python/.venv; the
# test venv python/.venv keeps its debug build), then runs
# bench/python/bench.py and bench/python/memory.py under scripts/with-redis.sh
# standalone. Markdown
# tables go to stdout, per-batch lines to stderr; with BENCH_OUT=<dir> both
# are also kept there with a JSON of every batch.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

export SK_PORT_BASE=${SK_PORT_BASE:-17100}
export SK_REDIS_DIR=${SK_REDIS_DIR:-$repo/.tmp/redis-python}

venv=$repo/bench/python/.venv
if [ ! -x "$venv/bin/python" ]; then
  echo "bench-python: creating $venv" >&2
  "${PYTHON:-python3}" -m venv "$venv"
fi
stamp=$venv/.requirements.sha256
want=$(sha256sum bench/python/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bench-python: installing bench/python/requirements.txt" >&2
  timeout 600 "$venv/bin/pip" install -q --disable-pip-version-check -r bench/python/requirements.txt
  echo "$want" >"$stamp"
fi

# maturin's PEP 517 build is a release build by default (the workspace's
# release profile, thin LTO). Rebuilt only when a source changed.
src_hash=$(cat python/pyproject.toml python/sessionkeeper/*.py bindings/python/Cargo.toml bindings/python/src/*.rs \
  core/Cargo.toml core/src/*.rs core/src/*/*.rs Cargo.lock | sha256sum | cut -d' ' -f1)
if [ "$(cat "$venv/.sessionkeeper.sha256" 2>/dev/null)" != "$src_hash" ]; then
  echo "bench-python: pip install ./python (release build)" >&2
  started=$SECONDS
  timeout 1800 "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall ./python
  echo "$src_hash" >"$venv/.sessionkeeper.sha256"
  echo "bench-python: built in $((SECONDS - started))s" >&2
fi

# The speed benchmark, then the memory one (each store in a fresh process).
py=$venv/bin/python
cmd=(scripts/with-redis.sh standalone -- bash -c "timeout 3600 '$py' bench/python/bench.py && echo && timeout 3600 '$py' bench/python/memory.py")
if [ -n "${BENCH_OUT:-}" ]; then
  mkdir -p "$BENCH_OUT"
  name=$(date +%Y%m%d-%H%M%S)
  export BENCH_JSON=$BENCH_OUT/$name.json
  "${cmd[@]}" > >(tee "$BENCH_OUT/$name.md") 2> >(tee "$BENCH_OUT/$name.err" >&2)
else
  "${cmd[@]}"
fi

#!/usr/bin/env bash
# The Python package: builds it ONCE the way users install it
# (`pip install ./python`, in debug here to reuse cargo's shared target/),
# then runs the pytest suite against standalone Redis and the Cluster (every
# test), and Sentinel and TLS (tests/test_topologies.py).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
started=$SECONDS

scripts/setup.sh

# Private Redis ports and state, so other parts' servers are never touched.
export SK_PORT_BASE=${SK_PORT_BASE:-17100}
export SK_REDIS_DIR=${SK_REDIS_DIR:-$repo/.tmp/redis-python}

venv=$repo/python/.venv
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  echo "test-python: creating $venv"
  "$python" -m venv "$venv"
fi
# Reinstall the test tools only when the list changed.
stamp=$venv/.requirements-test.sha256
want=$(sha256sum python/requirements-test.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "test-python: installing python/requirements-test.txt"
  timeout 600 "$venv/bin/pip" install -q --disable-pip-version-check -r python/requirements-test.txt
  echo "$want" >"$stamp"
fi

# `pip install ./python` is the path users take (PEP 517 through maturin,
# with build isolation). MATURIN_PEP517_ARGS picks the debug profile: the
# same cargo target/ as the other parts, minutes faster than a release build.
echo "test-python: pip install ./python (debug build)"
build_started=$SECONDS
MATURIN_PEP517_ARGS="--profile dev" timeout 900 "$venv/bin/pip" install -q --disable-pip-version-check \
  --no-deps --force-reinstall ./python
echo "test-python: built and installed in $((SECONDS - build_started))s"
# The tests must import the installed package, not the source tree.
(cd /tmp && "$venv/bin/python" -c 'import sessionkeeper, sys; print("test-python: testing", sessionkeeper.__file__)')

status=0
timeout 900 scripts/with-redis.sh standalone cluster sentinel tls -- \
  "$venv/bin/pytest" python/tests -q -ra -p no:cacheprovider --timeout 120 || status=$?
echo "test-python: finished in $((SECONDS - started))s (exit $status)"
exit $status

#!/usr/bin/env bash
# The Node package's tests (issue 5): installs the npm dev dependencies from
# node/package-lock.json when missing, builds the addon once (debug, in the
# shared cargo target), then runs node's built-in test runner on node/test
# against standalone Redis and the Cluster (and Sentinel and TLS for their own
# suite): express-session over HTTP, @fastify/session, the cluster module,
# Redis down/paused, the event loop, memory growth, shared-mode cookies, CJS/ESM
# entries, the TypeScript types, and `npm install <path>`.
# Prints the runner's summary ("ℹ tests N / pass N / fail N") and
# "test-node: passed|FAILED in Ns"; exits non-zero when anything failed.
#
# Redis ports: set SK_PORT_BASE / SK_REDIS_DIR to run beside other suites.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

scripts/setup.sh

command -v node >/dev/null && command -v npm >/dev/null || {
  echo "test-node: node and npm are needed (Node 20 or newer)" >&2
  exit 1
}
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "test-node: Node $(node --version) is too old; Node 20 or newer is needed" >&2
  exit 1
fi

# Dev dependencies (express, express-session, fastify, typescript, ...):
# reinstalled only when the lock file is newer than the installed tree.
# --ignore-scripts: the package's own install script would build a release
# addon; the tests build a debug one below.
if [ ! -f node/node_modules/.package-lock.json ] || [ node/package-lock.json -nt node/node_modules/.package-lock.json ]; then
  echo "--- npm ci (node/)"
  (cd node && timeout 600 npm ci --ignore-scripts --no-audit --no-fund)
fi

echo "--- build the addon (debug)"
(cd node && timeout 1500 node scripts/build-native.js)

echo "--- node --test (standalone, cluster, sentinel, tls)"
set +e
timeout 900 scripts/with-redis.sh standalone cluster sentinel tls -- \
  bash -c 'cd node && exec node --test --test-concurrency=1 --test-reporter=spec test/*.test.js'
rc=$?
set -e

secs=$(($(date +%s) - started))
if [ $rc -eq 0 ]; then
  echo "test-node: passed in ${secs}s"
else
  echo "test-node: FAILED (exit $rc) in ${secs}s"
fi
exit $rc

#!/usr/bin/env bash
# The Node benchmark (issue 5): an express + express-session app on our store
# vs connect-redis 8 + ioredis, connect-redis 10 + node-redis and MemoryStore,
# driven by autocannon with one fixed session cookie on a read-only and a
# write route; interleaved rounds on one private Redis, medians, ratios,
# p99, Redis commands per request. Not a test: never run in CI.
#
#   scripts/bench-node.sh            # ROUNDS=3 DURATION=10 WARMUP=3 CONNECTIONS=10
#
# Builds the addon in release once (into bench/node/.build, beside the tests'
# debug build), installs bench/node's npm dependencies, starts a standalone
# Redis (SK_PORT_BASE / SK_REDIS_DIR as for the tests) and writes the table to
# stdout and bench/node/results/<time>.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/.."

export SK_PORT_BASE=${SK_PORT_BASE:-17230}
export SK_REDIS_DIR=${SK_REDIS_DIR:-$PWD/.tmp/redis-bench-node}

if [ ! -f bench/node/node_modules/.package-lock.json ] || [ bench/node/package-lock.json -nt bench/node/node_modules/.package-lock.json ]; then
  echo "--- npm ci (bench/node)"
  (cd bench/node && timeout 600 npm ci --no-audit --no-fund)
fi

echo "--- build the addon (release)"
SESSIONKEEPER_BUILD_PROFILE=release SESSIONKEEPER_BUILD_OUT=bench/node/.build/sessionkeeper.node \
  timeout 2400 node node/scripts/build-native.js
export SESSIONKEEPER_NATIVE=$PWD/bench/node/.build/sessionkeeper.node

mkdir -p bench/node/results
out=bench/node/results/$(date -u +%Y-%m-%dT%H-%M-%S).md
echo "--- bench (uptime: $(uptime))"
{
  dirty=""
  git diff --quiet HEAD -- core bindings/node node 2>/dev/null || dirty=" + uncommitted changes in core/, bindings/node/ or node/"
  echo "Commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$dirty; redis-server $(redis-server --version | cut -d' ' -f3 | cut -d= -f2); $(date -u +%Y-%m-%dT%H:%MZ)."
  echo
  timeout 3600 scripts/with-redis.sh standalone -- \
    bash -c 'cd bench/node && REDIS_URL="$SK_REDIS_URL" exec node run.js'
} | tee "$out"
echo "bench-node: table in $out"

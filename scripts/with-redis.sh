#!/usr/bin/env bash
# Usage: scripts/with-redis.sh <topology...> -- <command...>
# Starts the named Redis topologies on private ports, runs the command with
# their URLs in the environment, and stops them again whatever happens.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
topo="$here/tests/topology/redis.sh"

topologies=()
while (($#)) && [ "$1" != "--" ]; do topologies+=("$1"); shift; done
[ "${1:-}" = "--" ] || { echo "usage: $0 <topology...> -- <command...>" >&2; exit 2; }
shift

trap '"$topo" stop "${topologies[@]}" >/dev/null 2>&1 || true' EXIT
"$topo" start "${topologies[@]}"
# shellcheck disable=SC1091
. "${SK_REDIS_DIR:-$here/.tmp/redis}/env.sh"
export SK_REQUIRE_REDIS=1
"$@"

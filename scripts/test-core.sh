#!/usr/bin/env bash
# The engine's tests: unit tests, the contract on every backend, then the
# destructive ones (fork, failover) last, since failover changes the topology.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -p sessionkeeper-core --lib --test contract
# (fork and failover suites follow)

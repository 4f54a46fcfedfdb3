#!/usr/bin/env bash
# The engine's tests: unit tests, the contract on every backend and the
# Redis-only checks, then fork, then failover last (it kills masters; the
# killed nodes are restarted, but the topology is no longer pristine).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked -p sessionkeeper-core --lib --test no_panic --test contract --test redis_specific
cargo test --locked -p sessionkeeper-core --doc
cargo test --locked -p sessionkeeper-core --test disruption -- --test-threads=1
cargo test --locked -p sessionkeeper-core --test fork
cargo test --locked -p sessionkeeper-core --test failover -- --test-threads=1

#!/usr/bin/env bash
# The core benchmark: sessionkeeper-core's load/save against redis-benchmark
# on the same Redis server, interleaved. Needs SK_REDIS_URL (a private
# standalone Redis); `make bench` runs it through scripts/with-redis.sh.
# Knobs: BENCH_SECS, BENCH_WARMUP, BENCH_ROUNDS, BENCH_TASKS, BENCH_ONLY
# (see bench/src/main.rs). The table goes to stdout, progress to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${SK_REDIS_URL:?SK_REDIS_URL is not set: run via scripts/with-redis.sh standalone -- $0 (or make bench)}"
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found (Debian package redis-tools)" >&2; exit 1; }
echo "building sessionkeeper-bench (release)..." >&2
cargo build --release -q -p sessionkeeper-bench
# Like cargo run --release -p sessionkeeper-bench, without a second cargo lock wait.
# A wedged Redis must not hang the run: the default settings finish in ~2 minutes.
exec timeout 900 target/release/sessionkeeper-bench "$@"

#!/usr/bin/env bash
# The Ruby benchmark (bench/ruby/README.md); a benchmark, never run in CI.
#
# Builds the Ruby extension in release once, starts a private standalone
# Redis (unless SK_REDIS_URL is already set), then runs, against that one
# Redis:
#   1. bench/ruby/inproc.rb      one process, interleaved blocks, minimal ActionDispatch stack:
#                                ours vs redis-actionpack vs :cache_store (Redis, Memory)
#   2. bench/ruby/puma_bench.rb  Puma (8 threads) under wrk, shared session, lost updates
#   3. bench/ruby/memory.rb      each store in a fresh process: RSS, private memory, Redis bytes per session
# Tables go to stdout and to bench/ruby/results/<time>-{inproc,puma}.{md,json}.
#
# Knobs: ROUNDS (3), BLOCKS, K, WARMUP (inproc.rb), DUR, WARM (puma_bench.rb), SESSIONS (memory.rb),
# CASES=ours,redis_store,cache_redis,cache_mem,mem_rtt (inproc; Puma: the first four), SK_RUBY_BENCH_ONLY=inproc|puma|memory,
# SK_PORT_BASE (17050: Redis on that port) and BENCH_PORT (17080: Puma).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

# The peers and the load generator are benchmark-only: install them here,
# not through scripts/deps (the test suite does not need them).
need=()
for pkg in ruby ruby-dev ruby-railties ruby-actionpack ruby-redis ruby-redis-actionpack puma wrk redis-server redis-tools; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
  echo "== bench-ruby: installing ${need[*]}"
  apt-get install -y --no-install-recommends "${need[@]}"
fi

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
echo "== bench-ruby: cargo build --release -p sessionkeeper-ruby"
timeout 3600 cargo build --release -p sessionkeeper-ruby
build="$repo/bench/ruby/.build"
mkdir -p "$build/sessionkeeper"
cp "$target_dir/release/libsessionkeeper_ruby.so" "$build/sessionkeeper/sessionkeeper_ruby.so"
# The release extension comes first on the load path, the gem's Ruby files after it.
export RUBYLIB="$build:$repo/ruby/lib${RUBYLIB:+:$RUBYLIB}"
ruby -e 'require "sessionkeeper"; so = $LOADED_FEATURES.grep(/sessionkeeper_ruby/).first
         abort "bench-ruby: loaded #{so}, not the release build" unless so.start_with?(ARGV[0])' "$build"

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
results="$repo/bench/ruby/results"
mkdir -p "$results"
export SK_RUBY_BENCH_STAMP="$stamp" SK_RUBY_BENCH_RESULTS="$results"

run() {
  local only="${SK_RUBY_BENCH_ONLY:-}"
  echo "== bench-ruby: Redis $SK_REDIS_URL ($(redis-server --version | grep -o 'v=[^ ]*')), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "== bench-ruby: built from $(git rev-parse --short HEAD)$([ -n "$(git status --porcelain -- core bindings/ruby ruby)" ] && echo ' + uncommitted changes in core/bindings/ruby/ruby')"
  if [ -z "$only" ] || [ "$only" = inproc ]; then
    echo "== bench-ruby: in-process (inproc.rb)"
    BENCH_JSON="$SK_RUBY_BENCH_RESULTS/$SK_RUBY_BENCH_STAMP-inproc.json" timeout 3600 ruby -W0 bench/ruby/inproc.rb |
      tee "$SK_RUBY_BENCH_RESULTS/$SK_RUBY_BENCH_STAMP-inproc.md"
  fi
  if [ -z "$only" ] || [ "$only" = puma ]; then
    echo "== bench-ruby: Puma, 8 threads, wrk (puma_bench.rb)"
    BENCH_JSON="$SK_RUBY_BENCH_RESULTS/$SK_RUBY_BENCH_STAMP-puma.json" timeout 3600 ruby -W0 bench/ruby/puma_bench.rb |
      tee "$SK_RUBY_BENCH_RESULTS/$SK_RUBY_BENCH_STAMP-puma.md"
  fi
  if [ -z "$only" ] || [ "$only" = memory ]; then
    echo "== bench-ruby: memory, each store in a fresh process (memory.rb)"
    BENCH_JSON="$SK_RUBY_BENCH_RESULTS/$SK_RUBY_BENCH_STAMP-memory.json" timeout 3600 ruby -W0 bench/ruby/memory.rb |
      tee "$SK_RUBY_BENCH_RESULTS/$SK_RUBY_BENCH_STAMP-memory.md"
  fi
}
export -f run

if [ -n "${SK_REDIS_URL:-}" ]; then
  run
else
  export SK_PORT_BASE="${SK_PORT_BASE:-17050}"
  export SK_REDIS_DIR="${SK_REDIS_DIR:-$repo/.tmp/redis-ruby-bench}"
  scripts/with-redis.sh standalone -- bash -c run
fi
echo "== bench-ruby: results in ${results#"$repo"/}/$stamp-*"

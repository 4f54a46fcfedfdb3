#!/usr/bin/env bash
# The Ruby gem's tests: builds the extension once (debug), runs the minitest
# suites against real Redis (standalone, Cluster, Sentinel, TLS) and a real Rails 6.1 app,
# then a packaging smoke test (stage, gem build, gem install into a temporary
# GEM_HOME, and require from another directory).
#
# The smoke test's gem install compiles with SESSIONKEEPER_CARGO_PROFILE=dev
# (a user's gem install compiles in release, the default): the registry
# crates are then the ones the debug build above already compiled, so the
# gem costs ~1 min instead of a thin-LTO release build of the whole tree
# (6-8 min on this 2-core machine), which keeps a cold run near 8 minutes.
# SK_RUBY_GEM_PROFILE=release checks the release build instead.
#
# SK_RUBY_SKIP_PACKAGING=1 skips the packaging smoke test (local iteration).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
started=$SECONDS

scripts/setup.sh

# Private Redis ports and state, so parallel parts never touch each other's servers.
export SK_PORT_BASE="${SK_PORT_BASE:-17000}"
export SK_REDIS_DIR="${SK_REDIS_DIR:-$repo/.tmp/redis-ruby}"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"

echo "== ruby: cargo build -p sessionkeeper-ruby (debug)"
timeout 1200 cargo build -p sessionkeeper-ruby
cp "$target_dir/debug/libsessionkeeper_ruby.so" ruby/lib/sessionkeeper/sessionkeeper_ruby.so

# Each suite prints minitest's summary line; the Rails suite runs once per
# topology because a process holds one Rails application.
run_suites() {
  local failed=0 passed=0
  suite() {
    local name=$1 t0=$SECONDS
    shift
    echo "== ruby: $name"
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "== ruby: $name FAILED"; fi
    echo "== ruby: ($name: $((SECONDS - t0))s)"
  }
  local rb=(timeout 300 ruby -W0 -Iruby/lib -Iruby/test)
  suite "store, GVL, fork, Rack, memory growth, README" "${rb[@]}" -e 'ARGV.each { |f| require File.expand_path(f) }' \
    ruby/test/store_test.rb ruby/test/gvl_test.rb ruby/test/fork_test.rb ruby/test/rack_test.rb ruby/test/memory_test.rb \
    ruby/test/readme_test.rb
  suite "Sentinel and TLS: store, Rack, failures, failover" "${rb[@]}" ruby/test/topology_test.rb
  suite "Rails on standalone Redis" env SK_TEST_TOPOLOGY=standalone "${rb[@]}" ruby/test/rails_test.rb
  suite "Rails on Redis Cluster" env SK_TEST_TOPOLOGY=cluster "${rb[@]}" ruby/test/rails_test.rb
  suite "Rails through Sentinel" env SK_TEST_TOPOLOGY=sentinel "${rb[@]}" ruby/test/rails_test.rb
  suite "Rails over TLS" env SK_TEST_TOPOLOGY=tls "${rb[@]}" ruby/test/rails_test.rb
  if [ -f ruby/test/puma_test.rb ]; then
    suite "Puma preload_app! with 2 workers" "${rb[@]}" ruby/test/puma_test.rb
  fi
  echo "== ruby: $passed suites passed, $failed failed"
  [ "$failed" -eq 0 ]
}
export -f run_suites

status=0
scripts/with-redis.sh standalone cluster sentinel tls -- bash -c run_suites || status=1

if [ "${SK_RUBY_SKIP_PACKAGING:-0}" != 1 ]; then
  gem_profile="${SK_RUBY_GEM_PROFILE:-dev}"
  echo "== ruby: packaging smoke test (stage, gem build, gem install --local, $gem_profile profile)"
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/sessionkeeper-gem.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  if ruby/stage.sh &&
    (cd ruby && gem build sessionkeeper.gemspec -o "$tmp/sessionkeeper.gem" >/dev/null) &&
    SESSIONKEEPER_CARGO_TARGET_DIR="$target_dir" SESSIONKEEPER_CARGO_PROFILE="$gem_profile" \
      GEM_HOME="$tmp/gems" GEM_PATH="$tmp/gems" \
      timeout 1200 gem install --local --no-document "$tmp/sessionkeeper.gem" &&
    (cd "$tmp" && GEM_HOME="$tmp/gems" GEM_PATH="$tmp/gems" timeout 60 ruby -e '
      require "sessionkeeper"
      store = Sessionkeeper::Store.new("memory://smoke")
      id, = store.create("ok" => true)
      raise "round trip failed" unless store.load(id).data == { "ok" => true }
      secret = "a shared secret of at least 32 bytes"
      raise "cookie signing failed" unless Sessionkeeper.unsign_cookie(Sessionkeeper.sign_cookie(id, secret), secret) == id
      so = $LOADED_FEATURES.grep(/sessionkeeper_ruby/).first
      raise "loaded #{so}, not the installed gem" unless so.start_with?(ENV["GEM_HOME"])
      puts "packaging: require \"sessionkeeper\" from #{Dir.pwd} loaded #{so}"'); then
    echo "== ruby: packaging smoke test passed"
  else
    echo "== ruby: packaging smoke test FAILED"
    status=1
  fi
fi

echo "== ruby: $([ "$status" -eq 0 ] && echo OK || echo FAILED) in $((SECONDS - started))s"
exit "$status"

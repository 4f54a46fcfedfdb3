# frozen_string_literal: true

# One store of stores.rb under Puma (puma_bench.rb starts one Puma per case):
# STORE=ours|redis_store|cache_redis|cache_mem, SK_REDIS_URL, BENCH_TAG.
require_relative "stores"

run SkBench.app(ENV.fetch("STORE"), ENV.fetch("SK_REDIS_URL"), ENV.fetch("BENCH_TAG"))

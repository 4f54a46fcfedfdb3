# frozen_string_literal: true

# Puma for puma_bench.rb: one process, 8 threads (rack.multithread is true,
# so redis-actionpack takes its global Mutex as it would in production).
threads 8, 8
bind "tcp://127.0.0.1:#{ENV.fetch('BENCH_PORT')}"
environment "production"
quiet

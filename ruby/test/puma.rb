# frozen_string_literal: true

# Puma configuration for puma_test.rb: the production shape of a Rails app.
workers 2
threads 2, 4
preload_app!
bind "tcp://127.0.0.1:#{ENV.fetch('SK_PUMA_PORT')}"
environment "production"
quiet
worker_timeout 30

# frozen_string_literal: true

# Puma serves the Rails app: `puma -b tcp://127.0.0.1:PORT tests/e2e/rails/config.ru`.
require_relative "app"

Rails.application.initialize!
run Rails.application

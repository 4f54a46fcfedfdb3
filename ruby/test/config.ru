# frozen_string_literal: true

# The test Rails app under Puma (puma_test.rb). With preload_app! this runs in
# the master before it forks the workers; the request below makes the master
# open the engine's runtime and Redis connections first, so the workers start
# with inherited ones (which the engine must replace, never reuse).
require_relative "rails_app"

warm = Rack::MockRequest.new(Rails.application).get("/set?warmed_in=master")
raise "warm-up request failed: #{warm.status}" unless warm.status == 200

run Rails.application

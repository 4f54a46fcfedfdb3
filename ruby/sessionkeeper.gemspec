# frozen_string_literal: true

require_relative "lib/sessionkeeper/version"

Gem::Specification.new do |s|
  s.name = "sessionkeeper"
  s.version = Sessionkeeper::VERSION
  s.summary = "Rails and Rack sessions in Redis (standalone, Cluster, Sentinel), a Rust engine shared with Python, Node and C"
  s.description = <<~TEXT
    A Rails session store (config.session_store :sessionkeeper_store) and a Rack
    middleware that keep sessions in Redis: one round trip per read or write,
    only changed keys written (concurrent requests keep each other's changes),
    Redis Cluster, fail-open when Redis is down, the GVL released during every
    Redis wait, safe under Puma's preload_app! and fork. Accepts
    redis-session-store's options. Compiles a Rust extension: needs cargo and libclang.
  TEXT
  s.license = "Apache-2.0"
  s.authors = ["Sessionkeeper contributors"]
  s.required_ruby_version = ">= 3.0"
  s.files = Dir["lib/**/*.rb", "ext/sessionkeeper/extconf.rb", "README.md"] +
            Dir["ext/sessionkeeper/crate/**/*"].reject { |f| File.directory?(f) || f.include?("/target/") }
  s.extensions = ["ext/sessionkeeper/extconf.rb"]
  s.require_paths = ["lib"]
end

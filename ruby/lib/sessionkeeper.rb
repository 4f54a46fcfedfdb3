# frozen_string_literal: true

require "sessionkeeper/version"
require "sessionkeeper/errors"
# The native extension (bindings/ruby); it looks up the error classes above.
require "sessionkeeper/sessionkeeper_ruby"
require "sessionkeeper/store"

# Web sessions in Redis (standalone, Cluster, Sentinel, TLS), shared with the
# Python, Node and C bindings.
#
# * Rails: `config.session_store :sessionkeeper_store, url: ..., key: ..., expire_after: 2.hours`
#   (see {ActionDispatch::Session::SessionkeeperStore}).
# * Rack: `use Sessionkeeper::Rack::Session, url: ...` (require "sessionkeeper/rack").
# * Directly: {Sessionkeeper::Store}.
module Sessionkeeper
  autoload :Adapter, "sessionkeeper/adapter"

  module Rack
    autoload :Session, "sessionkeeper/rack"
  end
end

# Rails resolves `config.session_store :sessionkeeper_store` with
# ActionDispatch::Session.const_get("SessionkeeperStore"), which also finds
# top-level constants. The autoloads make that work whether Rails or this gem
# is required first, without loading Rails here.
if defined?(ActionDispatch::Session)
  ActionDispatch::Session.autoload :SessionkeeperStore, "sessionkeeper/rails"
end
Object.autoload :SessionkeeperStore, "sessionkeeper/rails" unless Object.const_defined?(:SessionkeeperStore, false)

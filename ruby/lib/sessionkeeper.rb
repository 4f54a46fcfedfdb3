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

  # The shared-mode cookie value for session `id` (docs/shared-sessions.md):
  # `s:<id>.<signature>`, express-session's format (HMAC-SHA256 keyed with
  # `secret`, Base64 without padding), which every Sessionkeeper adapter in
  # every language verifies.
  # @param id [String] a session id
  # @param secret [String] at least 32 bytes (used as its bytes)
  # @return [String]
  # @raise [ConfigError] the secret is shorter than 32 bytes
  # @raise [InvalidIdError] `id` is not a session id
  def self.sign_cookie(id, secret)
    Native.sign_cookie(id.to_str, secret.to_str)
  end

  # The session id in a shared-mode cookie value, or nil when no secret
  # verifies it (tampered, unsigned, signed with another secret, not a
  # shared cookie). The value may be as any framework's cookie parser hands
  # it over: percent-encoded, in double quotes, with `+` turned into a space.
  # @param value [String] the cookie's value
  # @param secrets [String, Array<String>] the first signs, every one
  #   verifies (rotation: newest first)
  # @return [String, nil]
  # @raise [ConfigError] no secret, or one shorter than 32 bytes
  def self.unsign_cookie(value, secrets)
    Native.unsign_cookie(value.to_s, cookie_secrets(secrets))
  end

  # @api private
  # @return [Array<String>] non-empty
  def self.cookie_secrets(secrets)
    list = secrets.is_a?(String) ? [secrets] : Array(secrets)
    raise ConfigError, "no cookie secret given" if list.empty?

    list.map do |secret|
      raise ConfigError, "a cookie secret must be a String, got a #{secret.class}" unless secret.is_a?(String)

      secret
    end
  end

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

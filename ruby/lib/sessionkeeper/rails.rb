# frozen_string_literal: true

require "action_dispatch"
require "action_dispatch/middleware/session/abstract_store"
# sk_wrap needs it; a full Rails app loads it anyway, a bare ActionDispatch
# stack does not.
require "active_support/core_ext/hash/indifferent_access"
require "sessionkeeper"
require "sessionkeeper/adapter"

module ActionDispatch
  module Session
    # Rails session store backed by Sessionkeeper.
    #
    #   # config/initializers/session_store.rb
    #   Rails.application.config.session_store :sessionkeeper_store,
    #     url: ENV["REDIS_URL"], key: "_app_session", expire_after: 2.hours
    #
    # A drop-in for redis-session-store: its option names and shapes
    # (redis: { url:, key_prefix:, expire_after:, ttl: }, key_prefix:,
    # serializer:, on_redis_down:, on_session_load_error:) are accepted.
    # Every option is described in {Sessionkeeper::Adapter}.
    #
    # Sessions come back with indifferent access (session[:user][:name] and
    # session["user"]["name"] both work); Symbols are stored as Strings and
    # Times round-trip, as with Rails' JSON cookie serializer.
    class SessionkeeperStore < AbstractSecureStore
      include Sessionkeeper::Adapter

      private

      def sk_wrap(data)
        data.with_indifferent_access
      end

      # Rails writes cookies through the cookie jar (so domain: :all and
      # tld_length work); delete through it too.
      def sk_forget_cookie(req, _res)
        req.cookie_jar.delete(key, path: @default_options[:path], domain: @default_options[:domain])
      end
    end
  end
end

# For Rails' lookup when this gem was required before Rails (see
# lib/sessionkeeper.rb); redis-session-store is found the same way.
SessionkeeperStore = ActionDispatch::Session::SessionkeeperStore unless Object.const_defined?(:SessionkeeperStore, false)

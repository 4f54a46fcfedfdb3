# frozen_string_literal: true

require "rack"
require "rack/session/abstract/id"
require "sessionkeeper"
require "sessionkeeper/adapter"

module Sessionkeeper
  module Rack
    # Rack middleware for apps without Rails (Sinatra, Roda, plain Rack).
    #
    #   use Sessionkeeper::Rack::Session, url: ENV["REDIS_URL"], key: "app.session",
    #     expire_after: 2 * 3600, same_site: :lax, secure: true
    #
    # The session is in env["rack.session"]; per-request options
    # (:skip, :defer, :renew, :drop, :expire_after) in env["rack.session.options"].
    # Takes the same options as the Rails store, see {Sessionkeeper::Adapter}.
    class Session < ::Rack::Session::Abstract::PersistedSecure
      include Sessionkeeper::Adapter
    end
  end
end

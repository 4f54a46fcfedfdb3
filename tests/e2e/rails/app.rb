# frozen_string_literal: true

# The Rails side of the shared-login demo and end-to-end test
# (docs/shared-sessions.md): a minimal, real Rails 6.1 app whose session store
# is Sessionkeeper in shared mode, so it shares one login with the Flask and
# Express apps beside it. Served by Puma (config.ru); configured by the
# environment that tests/e2e/apps.sh sets:
#   SK_REDIS_URL, E2E_KEY_PREFIX, E2E_COOKIE, E2E_SECRET,
#   E2E_RAILS_PORT, E2E_FLASK_PORT, E2E_EXPRESS_PORT (for the links).
require "rails"
require "active_support/all"
require "action_controller/railtie"
require "erb"
require "json"
require "sessionkeeper"

module E2e
  APP = "Rails"

  class Application < Rails::Application
    config.root = __dir__
    config.eager_load = false
    # Rails' own secret (CSRF tokens, signed cookies), not the shared one.
    config.secret_key_base = ENV.fetch("E2E_RAILS_SECRET_KEY_BASE") { "e2e-rails-" * 8 }
    config.logger = ActiveSupport::Logger.new($stdout).tap { |l| l.level = :warn }
    config.log_level = :warn
    config.hosts.clear
    config.active_support.deprecation = :silence
    # Shared mode: the same cookie name, secret, Redis URL and key prefix as
    # the Flask and Express apps; the cookie carries "s:<id>.<signature>".
    config.session_store :sessionkeeper_store,
                         url: ENV.fetch("SK_REDIS_URL"),
                         key_prefix: ENV.fetch("E2E_KEY_PREFIX"),
                         key: ENV.fetch("E2E_COOKIE"),
                         shared_secret: ENV.fetch("E2E_SECRET"),
                         expire_after: 1.hour,
                         same_site: :lax,
                         httponly: true

    routes.append do
      root to: "e2e/pages#show"
      get "state", to: "e2e/pages#state"
      post "login", to: "e2e/pages#login"
      post "logout", to: "e2e/pages#logout"
      post "color", to: "e2e/pages#color"
    end
  end

  class PagesController < ActionController::Base
    protect_from_forgery with: :exception

    def show
      render html: page.html_safe
    end

    # What this app sees in the session, for the HTTP driver.
    def state
      uid = session[:user_id]
      render json: {
        app: APP, logged_in: !uid.nil?, name: session[:name], user_id: uid,
        user_id_type: uid.nil? ? nil : uid.class.name, color: session[:color],
        keys: session.to_hash.keys.sort
      }
    end

    def login
      name = params.require(:name)
      user_id = Integer(params.require(:user_id), 10)
      reset_session # a new id at login, against session fixation
      session[:user_id] = user_id
      session[:name] = name
      flash[:notice] = "Logged in on Rails as #{name}"
      redirect_to "/"
    end

    def logout
      reset_session
      redirect_to "/"
    end

    def color
      session[:color] = params.require(:color)
      flash[:notice] = "Color set on Rails"
      redirect_to "/"
    end

    private

    def h(text)
      ERB::Util.html_escape(text.to_s)
    end

    def page
      uid = session[:user_id]
      who = if uid.nil?
              "Not logged in"
            else
              "Logged in as #{h session[:name]}, user_id #{h uid} (a Ruby #{h uid.class.name})"
            end
      token = h(form_authenticity_token)
      links = { "Rails" => "E2E_RAILS_PORT", "Flask" => "E2E_FLASK_PORT", "Express" => "E2E_EXPRESS_PORT" }
              .map { |app, var| %(<a id="to-#{app.downcase}" href="http://127.0.0.1:#{ENV.fetch(var)}/">#{app}</a>) }
      <<~HTML
        <!doctype html>
        <html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>#{APP}: one login across languages</title>
        <style>body{font-family:sans-serif;margin:2em;border-top:8px solid #c00;padding-top:1em}
        form{margin:.6em 0}#who{font-size:1.3em;font-weight:bold}</style></head>
        <body>
        <h1>#{APP}</h1>
        <p id="flash">#{h flash[:notice]}</p>
        <p id="who">#{who}</p>
        <p id="color">color: #{h(session[:color] || '(none)')}</p>
        <form id="login" method="post" action="/login">
          <input type="hidden" name="authenticity_token" value="#{token}">
          <input name="name" value="Ann"> <input name="user_id" value="42"> <button type="submit">Log in</button>
        </form>
        <form id="color-form" method="post" action="/color">
          <input type="hidden" name="authenticity_token" value="#{token}">
          <input name="color" value="red"> <button type="submit">Set color</button>
        </form>
        <form id="logout" method="post" action="/logout">
          <input type="hidden" name="authenticity_token" value="#{token}">
          <button type="submit">Log out</button>
        </form>
        <nav>#{links.join(' | ')}</nav>
        <p id="keys">session keys: #{h session.to_hash.keys.sort.join(', ')}</p>
        </body></html>
      HTML
    end
  end
end

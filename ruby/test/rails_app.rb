# frozen_string_literal: true

# A minimal, real Rails 6.1 application using the store the way an app does:
#   config.session_store :sessionkeeper_store, url:, key:, expire_after:
# Also started by Puma in puma_test.rb (see config.ru).
require "rails"
require "active_support/all"
require "action_controller/railtie"
require "sessionkeeper"

module SkTest
  # Test hooks the controller reads; set by the tests.
  class << self
    attr_accessor :latch, :redis_down_calls, :load_errors
  end
  self.redis_down_calls = []
  self.load_errors = []

  # A Ruby object the cross-language format cannot hold (serializer: :marshal tests).
  Point = Struct.new(:x, :y)

  # Two requests meet here: each announces it has loaded the session, then
  # waits until the other has too, so both read the same state before either
  # writes.
  class Latch
    def initialize(parties)
      @parties = parties
      @arrived = 0
      @mutex = Mutex.new
      @cond = ConditionVariable.new
    end

    def arrive_and_wait(timeout = 5)
      @mutex.synchronize do
        @arrived += 1
        @cond.broadcast
        deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
        while @arrived < @parties
          left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
          raise "latch timed out" if left <= 0

          @cond.wait(@mutex, left)
        end
      end
    end
  end

  # SK_TEST_TOPOLOGY=standalone|cluster|sentinel|tls picks the Redis the app uses.
  def self.url
    # (The same names as TestRedis::URL_VARS; Puma loads this file without test_helper.)
    name = { "standalone" => "SK_REDIS_URL", "cluster" => "SK_CLUSTER_URL", "sentinel" => "SK_SENTINEL_URL",
             "tls" => "SK_TLS_URL" }.fetch(ENV["SK_TEST_TOPOLOGY"] || "standalone")
    ENV.fetch(name) { raise "#{name} is not set: run under scripts/with-redis.sh" }
  end

  # Engine options the topology needs (the CA of the TLS topology's server).
  def self.engine_options
    ENV["SK_TEST_TOPOLOGY"] == "tls" ? { tls_ca_file: ENV.fetch("SK_TLS_CA") } : {}
  end

  KEY_PREFIX = "sktest:rails:#{Process.pid}:"

  class Application < Rails::Application
    config.root = __dir__
    config.eager_load = false
    config.secret_key_base = "0" * 64
    config.logger = Logger.new(nil)
    config.hosts.clear
    config.active_support.deprecation = :silence
    config.action_controller.allow_forgery_protection = false
    config.action_dispatch.show_exceptions = false
    config.session_store :sessionkeeper_store,
                         url: SkTest.url,
                         key: "_sk_test_session",
                         expire_after: 1.hour,
                         key_prefix: KEY_PREFIX,
                         command_timeout: 0.5,
                         same_site: :lax,
                         **SkTest.engine_options,
                         on_redis_down: ->(e, _env, sid) { SkTest.redis_down_calls << [e, sid] },
                         on_session_load_error: ->(e, sid) { SkTest.load_errors << [e, sid] }

    routes.append do
      %w[set get delete all flash_set flash_show token reset login expire_soon types bad
         slow_set slow_login skip drop defer read_only name pid point point_show].each do |action|
        get action, to: "sessions##{action}"
      end
      post "protected", to: "protected#create"
    end
  end
end

class SessionsController < ActionController::Base
  def set
    params.each_pair { |k, v| session[k] = v unless %w[controller action].include?(k) }
    render plain: "ok"
  end

  def get
    render plain: session[params[:k]].inspect
  end

  def delete
    session.delete(params[:k])
    render plain: "ok"
  end

  def all
    render json: { id: session.id&.public_id, data: session.to_hash }
  end

  def read_only
    render plain: session[:counter].to_s
  end

  def flash_set
    flash[:notice] = "saved!"
    redirect_to "/flash_show"
  end

  def flash_show
    render plain: flash[:notice].to_s
  end

  def token
    render plain: form_authenticity_token
  end

  # What an app does at logout.
  def reset
    reset_session
    session[:after_reset] = "yes"
    render plain: "ok"
  end

  # What an app does at login: a new id against session fixation, data kept.
  def login
    request.session_options[:renew] = true
    session[:user_id] = 42
    render plain: "ok"
  end

  def expire_soon
    request.session_options[:expire_after] = 1
    session[:short] = "lived"
    render plain: "ok"
  end

  def types
    session[:sym] = :value
    session[:time] = Time.at(1_700_000_000, 5, :usec).utc
    session[:nested] = { user: { name: "Ann", roles: [:admin] } }
    render plain: "ok"
  end

  # Which Puma worker served the request, and what it read.
  def pid
    session[:hits] = (session[:hits] || 0) + 1
    render plain: "#{Process.pid} #{session[:user]}"
  end

  # Indifferent access, as Rails users expect from redis-session-store.
  def name
    render plain: session[:nested][:user][:name]
  end

  def bad
    session[:object] = Object.new
    render plain: "ok"
  end

  def point
    session[:point] = SkTest::Point.new(Integer(params[:x] || 1), 2)
    render plain: "ok"
  end

  def point_show
    render plain: session[:point].inspect
  end

  # Loads the session, waits for the other request to have loaded it too,
  # then changes one key.
  def slow_set
    session[:loaded] # load now
    SkTest.latch.arrive_and_wait
    session[params[:k]] = params[:v]
    render plain: "ok"
  end

  # A login that takes a while: it has loaded the session, and another
  # request runs before it renews the id.
  def slow_login
    session[:loaded]
    SkTest.latch.arrive_and_wait
    login
  end

  # :skip and :defer render the session's id, which they send no cookie for.
  def skip
    request.session_options[:skip] = true
    session[:skipped] = "yes"
    render plain: session.id.public_id
  end

  def drop
    request.session_options[:drop] = true
    render plain: "ok"
  end

  def defer
    request.session_options[:defer] = true
    session[:deferred] = "yes"
    render plain: session.id.public_id
  end
end

class ProtectedController < ActionController::Base
  protect_from_forgery with: :exception

  def create
    session[:posted] = "yes"
    render plain: "ok"
  end
end

SkTest::Application.initialize!

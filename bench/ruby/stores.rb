# frozen_string_literal: true

# The four session stores the Ruby benchmark compares, each behind the same
# minimal ActionDispatch stack (ActionDispatch::Cookies -> session store ->
# endpoint), configured the way the peers' READMEs and Rails' guides show:
#
#   ours         Sessionkeeper's Rails store (config.session_store :sessionkeeper_store)
#   redis_store  redis-actionpack's ActionDispatch::Session::RedisStore (:redis_store)
#   cache_redis  Rails' :cache_store + ActiveSupport::Cache::RedisCacheStore
#   cache_mem    Rails' :cache_store + MemoryStore (no network: the upper bound)
#   mem_rtt      cache_mem plus what no Redis store can avoid: one round trip (a bare
#                PING on a raw socket, no client library, nothing encoded) per load
#                and one per save that changes the session, through Ruby's own IO:
#                the most a store built on Ruby's sockets could reach (ours, whose
#                I/O is in Rust, beats it)
#
# Every store gets expire_after: 1800 (the cookie's expiry and the Redis TTL),
# which is what Rails apps set; with it Rack rewrites every loaded session
# (the peers send the same bytes back to refresh the TTL, ours slides the TTL
# in the load's round trip and sends nothing for an unchanged session).
require "json"
require "action_dispatch"
require "action_dispatch/middleware/session/cache_store"
require "active_support"
require "active_support/cache"
require "active_support/cache/redis_cache_store"
require "redis"
require "redis-actionpack"
require "socket"
require "uri"
require "sessionkeeper"
require "sessionkeeper/rails"

module SkBench
  CASES = %w[ours redis_store cache_redis cache_mem mem_rtt].freeze
  REDIS_CASES = %w[redis_store cache_redis].freeze
  COOKIE = "_bench_session"
  TTL = 1800

  # What a logged-in Rails session typically holds.
  LOGIN = {
    "user_id" => 42,
    "_csrf_token" => "q6t3LbA5yQZ1m8y0s3Yc0m6T1gVvJk2s9S1tq4n0r3E=",
    "locale" => "en",
    "counter" => 0
  }.freeze

  # Requests handled per key of /incr, counted where nothing is lost (a
  # Mutex): what the stored counters should add up to.
  HANDLED = Hash.new(0)
  HANDLED_LOCK = Mutex.new

  # /login: fill the session; /read: read one key (the session is unchanged);
  # /write: increment "counter"; /incr?k=<key>: increment one key (the
  # lost-update check: each connection changes its own key); /dump: the
  # session as JSON; /handled: HANDLED as JSON.
  ENDPOINT = lambda do |env|
    session = env["rack.session"]
    body = case env["PATH_INFO"]
           when "/login" then LOGIN.each { |k, v| session[k] = v } && "ok"
           when "/read" then session["user_id"].to_s
           when "/write" then (session["counter"] = (session["counter"] || 0) + 1).to_s
           when "/incr"
             key = env["QUERY_STRING"][/\bk=(\w+)/, 1]
             HANDLED_LOCK.synchronize { HANDLED[key] += 1 }
             (session[key] = (session[key] || 0) + 1).to_s
           when "/dump" then JSON.generate(session.to_hash)
           when "/handled" then HANDLED_LOCK.synchronize { JSON.generate(HANDLED) }
           else "?"
           end
    [200, { "Content-Type" => "text/plain" }, [body]]
  end

  # mem_rtt's cache (see the top of this file). One socket per thread.
  class RoundTripMemoryStore < ActiveSupport::Cache::MemoryStore
    def initialize(url)
      super()
      @uri = URI(url)
    end

    def read(name, options = nil)
      round_trip
      super
    end

    # Rack hands back every loaded session when expire_after is set; only a
    # changed one costs a round trip (as ours does).
    def write(name, value, options = nil)
      round_trip unless value == ActiveSupport::Cache::MemoryStore.instance_method(:read).bind_call(self, name)
      super
    end

    private

    def round_trip
      socket = (Thread.current[:sk_bench_rtt] ||= TCPSocket.new(@uri.host, @uri.port).tap do |s|
        s.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1)
      end)
      socket.write("PING\r\n")
      reply = socket.readpartial(64)
      raise "mem_rtt: unexpected reply to PING: #{reply.inspect}" unless reply == "+PONG\r\n"
    end
  end

  module_function

  # [middleware class, options] for a case; `tag` keeps key spaces apart.
  def store_for(name, url, tag)
    base = { key: COOKIE, expire_after: TTL }
    case name
    when "ours"
      [ActionDispatch::Session::SessionkeeperStore, base.merge(url: url, key_prefix: "bench:sk:#{tag}:")]
    when "redis_store"
      [ActionDispatch::Session::RedisStore, base.merge(servers: "#{url.chomp("/")}/0/bench:rs:#{tag}")]
    when "cache_redis"
      cache = ActiveSupport::Cache::RedisCacheStore.new(url: url, namespace: "bench:cs:#{tag}")
      [ActionDispatch::Session::CacheStore, base.merge(cache: cache)]
    when "cache_mem"
      [ActionDispatch::Session::CacheStore, base.merge(cache: ActiveSupport::Cache::MemoryStore.new)]
    when "mem_rtt"
      [ActionDispatch::Session::CacheStore, base.merge(cache: RoundTripMemoryStore.new(url))]
    else raise ArgumentError, "unknown case #{name}"
    end
  end

  def app(name, url, tag)
    klass, options = store_for(name, url, tag)
    Rack::Builder.new do
      use ActionDispatch::Cookies
      use klass, options
      run ENDPOINT
    end.to_app
  end

  # The Redis every benchmark script runs against (scripts/bench-ruby.sh sets it).
  def redis_url
    ENV.fetch("SK_REDIS_URL") { abort "SK_REDIS_URL is not set (run through scripts/bench-ruby.sh)" }
  end

  def loadavg
    File.read("/proc/loadavg").split.first(3).join(" ")
  rescue SystemCallError
    "?"
  end
end

# frozen_string_literal: true

# Sentinel and TLS from Ruby: the store contract, the Rack middleware and a
# Rails stack through each, TLS failure modes, and a Sentinel failover.
# scripts/test-ruby.sh starts both topologies (scripts/with-redis.sh
# standalone cluster sentinel tls); SK_SENTINEL_URL, SK_TLS_URL and
# SK_TLS_CA come from tests/topology/redis.sh.
require_relative "store_contract"
require "rack"
require "rack/test"
require "sessionkeeper/rack"

class StoreSentinelTest < Minitest::Test
  include StoreContract

  def url
    require_url(:sentinel)
  end
end

class StoreTlsTest < Minitest::Test
  include StoreContract

  def url
    require_url(:tls)
  end

  def topology_options
    { tls_ca_file: ENV.fetch("SK_TLS_CA") }
  end
end

# The Rack middleware (what Sinatra and Roda use) through each topology.
class RackTopologiesTest < Minitest::Test
  ENDPOINT = lambda do |env|
    req = Rack::Request.new(env)
    session = env["rack.session"]
    req.GET.each { |k, v| session[k] = v }
    [200, { "Content-Type" => "text/plain" }, [session.to_hash.sort.inspect]]
  end

  def through(url, **options)
    prefix = TestRedis.unique_prefix("rack-topology")
    app = Rack::Builder.new do
      use Sessionkeeper::Rack::Session, url: url, key: "app.session", key_prefix: prefix, **options
      run ENDPOINT
    end.to_app
    browser = Rack::Test::Session.new(app)
    browser.get "/?user=uma"
    id = browser.cookie_jar["app.session"]
    browser.get "/?n=2"
    assert_equal [%w[n 2], %w[user uma]].inspect, browser.last_response.body
    store = Sessionkeeper::Store.new(url, key_prefix: prefix, **options.slice(:tls_ca_file))
    assert_equal({ "user" => "uma", "n" => "2" }, store.load(id).data)
  end

  def test_sentinel
    through(require_url(:sentinel))
  end

  def test_tls
    through(require_url(:tls), tls_ca_file: ENV.fetch("SK_TLS_CA"))
  end
end

class TlsFailureTest < Minitest::Test
  def setup
    @url = require_url(:tls)
  end

  def test_without_the_ca_is_a_connection_error_not_a_hang
    store = Sessionkeeper::Store.new(@url, connect_timeout: 2, command_timeout: 2)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    e = assert_raises(Sessionkeeper::ConnectionError) { store.exists?(Sessionkeeper::Store.generate_id) }
    assert e.temporary?
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 10
  end

  def test_tls_insecure_skips_verification
    store = Sessionkeeper::Store.new(@url, key_prefix: TestRedis.unique_prefix("tls"), tls_insecure: true)
    id, = store.create("a" => 1)
    assert_equal({ "a" => 1 }, store.load(id).data)
  end

  def test_plain_redis_to_the_tls_port_fails_within_the_timeout
    _host, port = TestRedis.first_host(@url)
    store = Sessionkeeper::Store.new("redis://127.0.0.1:#{port}", connect_timeout: 1, command_timeout: 1)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    e = assert_raises(Sessionkeeper::Error) { store.exists?(Sessionkeeper::Store.generate_id) }
    assert e.temporary?
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 10
  end

  def test_missing_ca_file_is_a_config_error
    e = assert_raises(Sessionkeeper::ConfigError) { Sessionkeeper::Store.new(@url, tls_ca_file: "/nonexistent/ca.crt") }
    assert_match(%r{/nonexistent/ca\.crt}, e.message)
  end
end

# The Sentinels promote the replica; a store that was using the old master
# reaches the new one (within a few temporary errors while the switch is
# under way) and the sessions are still there.
class SentinelFailoverTest < Minitest::Test
  def setup
    @url = require_url(:sentinel)
    host, port = TestRedis.first_host(@url)
    @sentinel = [host, port]
    @master_name = @url.split("/").last
  end

  def master
    TestRedis.sentinel_master(*@sentinel, @master_name)
  end

  def sentinel_cli(*args)
    out, status = Open3.capture2e("redis-cli", "-h", @sentinel[0], "-p", @sentinel[1].to_s, *args.map(&:to_s))
    raise "redis-cli #{args.join(' ')}: #{out}" unless status.success?

    out.strip
  end

  def test_sessions_survive_a_failover
    store = Sessionkeeper::Store.new(@url, key_prefix: TestRedis.unique_prefix("failover"), command_timeout: 1,
                                           connect_timeout: 1)
    id, = store.create("user_id" => 7)
    old = master
    # Let the replica have the session before it is promoted.
    out, = Open3.capture2e("redis-cli", "-h", old[0], "-p", old[1], "WAIT", "1", "2000")
    assert_equal "1", out.strip, "the replica acknowledged the write"
    assert_equal "OK", sentinel_cli("SENTINEL", "FAILOVER", @master_name)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
    sleep 0.2 while master == old && Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
    refute_equal old, master, "the Sentinels did not promote the replica within 30s"

    errors = []
    loaded = nil
    loop do
      loaded = store.load(id)
      break
    rescue Sessionkeeper::Error => e
      assert e.temporary?, "#{e.class}: #{e.message}"
      errors << e
      flunk "no answer from the new master after #{errors.size} tries: #{e.message}" if
        Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      sleep 0.2
    end
    assert_equal({ "user_id" => 7 }, loaded&.data)
    loaded.data["after"] = "failover"
    assert_equal :saved, store.save(id, loaded.baseline, loaded.data)
    assert_equal({ "user_id" => 7, "after" => "failover" }, store.load(id).data)
  ensure
    settle(old) if old
  end

  # The suites after this one use the same Sentinels: wait until every
  # Sentinel names the new master and the old master replicates from it.
  def settle(old)
    sentinels = @url.sub(%r{\A[a-z+]+://}, "").split("/").first.split(",").map { |hp| hp.split(":") }
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
    loop do
      masters = sentinels.map { |host, port| TestRedis.sentinel_master(host, port, @master_name) rescue nil } # rubocop:disable Style/RescueModifier
      info, = Open3.capture2e("redis-cli", "-h", old[0], "-p", old[1], "INFO", "replication")
      settled = masters.uniq.size == 1 && masters.first != old && info.include?("master_link_status:up")
      return if settled
      raise "the Sentinels did not settle after the failover: #{masters.inspect}" if
        Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.2
    end
  end
end

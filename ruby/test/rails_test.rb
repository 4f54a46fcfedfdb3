# frozen_string_literal: true

# A real Rails 6.1 app (test/rails_app.rb) driven by ActionDispatch::IntegrationTest.
# Run once per topology: SK_TEST_TOPOLOGY=standalone|cluster|sentinel|tls (one Rails app per process).
require_relative "test_helper"
require_relative "rails_app"
require "active_support/test_case"
require "action_dispatch/testing/integration"

ActiveSupport.test_order = :random

module RailsTestHelpers
  COOKIE = "_sk_test_session"

  # The test app's routes behind our store with these options (in place of
  # the app's own configuration).
  def rails_app_with(store_options)
    stack = Rack::Builder.new do
      use ActionDispatch::Cookies
      use ActionDispatch::Session::SessionkeeperStore, store_options
      run Rails.application.routes
    end.to_app
    ->(env) { stack.call(env.merge!(Rails.application.env_config)) }
  end

  def store
    # Loading slides the expiry: use the app's, and pttl to look without touching.
    @store ||= Sessionkeeper::Store.new(SkTest.url, key_prefix: SkTest::KEY_PREFIX, idle_ttl: 3600, **SkTest.engine_options)
  end

  # Milliseconds the session has left in Redis, read without sliding it.
  def pttl(id)
    Integer(TestRedis.cli(SkTest.url, "PTTL", TestRedis.storage_key(SkTest::KEY_PREFIX, id)))
  end

  def session_id
    cookies[COOKIE]
  end

  # The Set-Cookie line for the session cookie in the last response, or nil.
  def session_set_cookie
    header = response.headers["Set-Cookie"]
    lines = header.is_a?(Array) ? header : header.to_s.split("\n")
    lines.find { |line| line.start_with?("#{COOKIE}=") }
  end

  def stored(id)
    store.load(id)&.data
  end

  def json
    JSON.parse(response.body)
  end
end

class RailsSessionTest < ActionDispatch::IntegrationTest
  include RailsTestHelpers

  def setup
    SkTest.redis_down_calls.clear
    SkTest.load_errors.clear
  end

  def test_set_read_update_delete
    get "/set", params: { a: "1", b: "2" }
    assert_response :success
    id = session_id
    assert_match(/\A\h{32}\z/, id)
    assert_equal({ "a" => "1", "b" => "2" }, stored(id))

    get "/get", params: { k: "a" }
    assert_equal '"1"', response.body
    get "/set", params: { a: "3" }
    get "/delete", params: { k: "b" }
    assert_equal id, session_id, "the id stays the same"
    assert_equal({ "a" => "3" }, stored(id))
    get "/all"
    assert_equal({ "a" => "3" }, json["data"])
    assert_equal id, json["id"]
  end

  # A client may send any bytes as the cookie; Rack hands raw non-ASCII
  # bytes over as a binary String and percent-escaped ones as invalid UTF-8.
  def test_a_cookie_of_any_bytes_is_no_session
    get "/set", params: { a: "1" }
    id = session_id
    ["\xE9\xFF".b, "#{id}\xE9".b, "%E9%FF", "#{id}%C3", "a" * 5000, "..", "%00"].each do |bad|
      reset!
      get "/get", params: { k: "a" }, headers: { "HTTP_COOKIE" => "#{COOKIE}=#{bad}".b }
      assert_response :success
      assert_equal "nil", response.body, "#{bad.inspect[0, 40]} is no session"
    end
    assert_equal({ "a" => "1" }, stored(id), "the real session is untouched")
  end

  def test_values_keep_their_types_and_indifferent_access
    get "/types"
    data = stored(session_id)
    assert_equal "value", data["sym"]
    assert_equal Time.at(1_700_000_000, 5, :usec), data["time"]
    assert_equal({ "user" => { "name" => "Ann", "roles" => ["admin"] } }, data["nested"])
    get "/name"
    assert_equal "Ann", response.body
  end

  def test_unsupported_value_raises_naming_the_key
    e = assert_raises(Sessionkeeper::CodecError) { get "/bad" }
    assert_match(/session key "object": cannot store an instance of Object.*serializer: :marshal/, e.message)
    e = assert_raises(Sessionkeeper::CodecError) { get "/point" }
    assert_match(/session key "point": cannot store an instance of SkTest::Point/, e.message)
  end

  def test_flash_survives_one_redirect
    get "/flash_set"
    assert_response :redirect
    follow_redirect!
    assert_equal "saved!", response.body
    get "/flash_show"
    assert_equal "", response.body
  end

  def test_csrf_token_is_kept_in_the_session
    ActionController::Base.allow_forgery_protection = true
    get "/token"
    token = response.body
    assert stored(session_id).key?("_csrf_token")
    post "/protected", params: { authenticity_token: token }
    assert_response :success
    assert_raises(ActionController::InvalidAuthenticityToken) do
      post "/protected", params: { authenticity_token: "forged" }
    end
  ensure
    ActionController::Base.allow_forgery_protection = false
  end

  def test_reset_session_destroys_the_old_session
    get "/set", params: { user_id: "7" }
    old_id = session_id
    get "/reset"
    new_id = session_id
    refute_equal old_id, new_id
    assert_nil stored(old_id)
    assert_equal({ "after_reset" => "yes" }, stored(new_id))
  end

  def test_renew_on_login_keeps_data_under_a_new_id
    get "/set", params: { cart: "3 items" }
    old_id = session_id
    get "/login"
    new_id = session_id
    refute_equal old_id, new_id
    assert_nil stored(old_id), "the pre-login id is dead (session fixation)"
    assert_equal({ "cart" => "3 items", "user_id" => 42 }, stored(new_id))
  end

  def test_cookie_attributes
    get "/set", params: { a: "1" }
    line = session_set_cookie
    refute_nil line
    assert_match(/\A#{COOKIE}=\h{32}; path=\//, line)
    assert_match(/; HttpOnly/i, line)
    assert_match(/; SameSite=Lax/i, line)
    expires = Time.httpdate(line[/expires=([^;]+)/, 1])
    assert_in_delta Time.now + 3600, expires, 5
    assert_in_delta 3_600_000, pttl(session_id), 5000, "Redis TTL follows expire_after"
  end

  def test_per_request_expire_after
    get "/expire_soon"
    id = session_id
    expires = Time.httpdate(session_set_cookie[/expires=([^;]+)/, 1])
    assert_in_delta Time.now + 1, expires, 2
    assert_operator pttl(id), :<=, 1000
    sleep 1.3
    assert_nil stored(id), "expired in Redis"
    get "/all"
    assert_equal({}, json["data"])
  end

  def test_untouched_or_empty_session_is_not_stored_and_gets_no_cookie
    get "/read_only"
    assert_nil session_set_cookie
    assert_nil session_id
  end

  def test_skip_writes_nothing
    get "/skip"
    assert_nil session_set_cookie, ":skip sends no cookie"
    assert_nil session_id
    assert_match(/\A\h{32}\z/, response.body)
    assert_nil stored(response.body), "a new session is not stored"

    get "/set", params: { a: "1" }
    id = session_id
    get "/skip"
    assert_equal id, response.body
    assert_nil session_set_cookie
    assert_equal({ "a" => "1" }, stored(id), "nor is a change to a stored one")
  end

  def test_drop_destroys_the_session
    get "/set", params: { a: "1" }
    id = session_id
    get "/drop"
    assert_nil stored(id)
    assert_nil session_set_cookie
  end

  # :defer leaves out the cookie, not the write (an API response that must
  # not set cookies still keeps what it changed).
  def test_defer_writes_the_session_but_sends_no_cookie
    get "/defer"
    assert_nil session_set_cookie, ":defer sends no cookie"
    assert_equal({ "deferred" => "yes" }, stored(response.body), "a new session is stored")

    reset!
    get "/set", params: { a: "1" }
    id = session_id
    get "/defer"
    assert_equal id, response.body
    assert_nil session_set_cookie
    assert_equal({ "a" => "1", "deferred" => "yes" }, stored(id), "and so is a change to a stored one")
  end

  def test_two_requests_changing_different_keys_keep_both
    get "/set", params: { base: "1" }
    id = session_id
    SkTest.latch = SkTest::Latch.new(2)
    threads = [%w[left L], %w[right R]].map do |k, v|
      Thread.new do
        s = open_session
        s.cookies[COOKIE] = id
        s.get "/slow_set", params: { k: k, v: v }
        s.response.status
      end
    end
    assert_equal [200, 200], threads.map { |t| t.join(10)&.value }
    assert_equal({ "base" => "1", "left" => "L", "right" => "R" }, stored(id))
  end

  # Requests `path` with session `id` in another thread and, once it has
  # loaded the session (it then waits at the latch), logs out in this one
  # before letting it finish. Returns its response and the logout's session.
  def race_with_a_logout(id, path, params = {})
    SkTest.latch = SkTest::Latch.new(2)
    slow = Thread.new do
      s = open_session
      s.cookies[COOKIE] = id
      s.get path, params: params
      s.response
    end
    sleep 0.05 until SkTest.latch.instance_variable_get(:@arrived) == 1 || !slow.alive?
    logout = open_session
    logout.cookies[COOKIE] = id
    logout.get "/reset"
    SkTest.latch.arrive_and_wait
    [slow.join(10)&.value, logout]
  end

  def test_logout_racing_a_slow_request_never_brings_the_session_back
    get "/set", params: { user_id: "7" }
    id = session_id
    slow_response, logout = race_with_a_logout(id, "/slow_set", k: "late", v: "write")
    assert_equal 200, slow_response.status
    assert_nil stored(id), "the destroyed session stays destroyed"
    refute_match(/#{COOKIE}=/, slow_response.headers["Set-Cookie"].to_s, "no cookie for a session that was not saved")
    assert_equal({ "after_reset" => "yes" }, stored(logout.cookies[COOKIE]))
  end

  # The login's renew finds the session destroyed: moving this request's
  # copy of it to a fresh id would log the user back in to the session they
  # just left, so nothing is written and no cookie is sent.
  def test_logout_racing_a_slow_login_never_brings_the_session_back_under_a_new_id
    get "/set", params: { cart: "3 items" }
    id = session_id
    login_response, logout = race_with_a_logout(id, "/slow_login")
    assert_equal 200, login_response.status
    refute_match(/#{COOKIE}=/, login_response.headers["Set-Cookie"].to_s, "no cookie: no session under a new id")
    assert_nil stored(id), "the destroyed session stays destroyed"
    assert_equal({ "after_reset" => "yes" }, stored(logout.cookies[COOKIE]))
  end

  # What a session's key may hold that is no session: another store's value
  # (no session, nothing reported, as a migration may read it) and records of
  # ours that cannot be read, whole or in one value (reported once, removed).
  BAD_VALUES = {
    "foreign" => ["\xC1garbage".b, false],
    "truncated record" => ["SKv1\x82\xA4a:ok".b, true],
    "undecodable value" => ["SKv1\x81\xA3a:x\xC4\x01\xC1".b, true]
  }.freeze

  def test_corrupt_session_starts_fresh
    BAD_VALUES.each do |what, (bytes, reported)|
      SkTest.load_errors.clear
      reset!
      get "/set", params: { a: "1" }
      id = session_id
      key = TestRedis.storage_key(SkTest::KEY_PREFIX, id)
      TestRedis.cli(SkTest.url, "SET", key, bytes)
      get "/all"
      assert_response :success
      assert_equal({}, json["data"], what)
      assert_equal(reported ? 1 : 0, SkTest.load_errors.size, what)
      SkTest.load_errors.each do |error, sid|
        assert_kind_of Sessionkeeper::CodecError, error
        assert_equal id, sid
      end
      assert_equal(reported, TestRedis.cli(SkTest.url, "EXISTS", key).strip == "0", "#{what}: removed iff ours")
      get "/set", params: { b: "2" }
      refute_equal id, session_id, "#{what}: a new session, not the corrupt one"
      assert_equal({ "b" => "2" }, stored(session_id))
    end
  end

  def test_redis_timeout_fails_open_with_a_fresh_unsaved_session
    skip "CLIENT PAUSE is per node; the standalone run covers it" if TestRedis.topology == :cluster
    get "/set", params: { a: "1" }
    # WRITE, not ALL: loads (GETEX) and saves (scripts) wait, while the
    # Sentinels' PINGs still get answers (through Sentinel, a master that
    # answers nothing for over a second gets failed over).
    TestRedis.cli(SkTest.url, "CLIENT", "PAUSE", 1500, "WRITE")
    begin
      get "/set", params: { b: "2" }
      assert_response :success
      assert_nil session_set_cookie, "no cookie for a session that was not saved"
      assert_equal 1, SkTest.redis_down_calls.size
      assert_kind_of Sessionkeeper::TimeoutError, SkTest.redis_down_calls.first[0]
    ensure
      TestRedis.cli(SkTest.url, "CLIENT", "UNPAUSE")
    end
    assert_equal({ "a" => "1" }, stored(session_id), "the stored session is untouched")
  end
end

# Redis unreachable: the same routes behind a store pointed at a closed port.
class RailsRedisDownTest < ActionDispatch::IntegrationTest
  include RailsTestHelpers

  def build_app(**options)
    store_options = {
      url: "redis://127.0.0.1:#{TestRedis.closed_port}/0", key: COOKIE, connect_timeout: 0.3, command_timeout: 0.3,
      on_redis_down: ->(e, env, sid) { @down << [e, env, sid] }
    }.merge(options)
    rails_app_with(store_options)
  end

  def setup
    @down = []
  end

  def app
    @app ||= build_app
  end

  def test_fail_open_gives_a_fresh_unsaved_session
    cookies[COOKIE] = "a" * 32
    get "/all"
    assert_response :success
    assert_equal({}, json["data"])
    get "/set", params: { a: "1" }
    assert_response :success
    assert_nil session_set_cookie, "no cookie for a session that was never saved"
    assert_equal 2, @down.size, "once per request"
    error, env, sid = @down.first
    assert_kind_of Sessionkeeper::ConnectionError, error
    assert error.temporary?
    assert_kind_of Hash, env
    assert_equal "a" * 32, sid
  end

  def test_logout_while_redis_is_down_makes_the_browser_forget_the_id
    cookies[COOKIE] = "a" * 32
    get "/reset"
    assert_response :success
    line = session_set_cookie
    refute_nil line, "the session cookie is deleted"
    assert_match(/max-age=0|expires=Thu, 01 Jan 1970/i, line)
    assert_equal 1, @down.size
  end

  def test_fail_closed_raises
    @app = build_app(fail_open: false)
    cookies[COOKIE] = "a" * 32
    assert_raises(Sessionkeeper::ConnectionError) { get "/all" }
    assert_empty @down
  end

  def test_options_are_checked_at_boot
    assert_raises(ArgumentError) { build_app(on_redis_down: "not callable") }
    assert_raises(ArgumentError) { build_app(serializer: :yaml) }
    assert_raises(ArgumentError) { build_app(redis: { client: Object.new }) }
    assert_raises(Sessionkeeper::ConfigError) { build_app(url: "bogus://") }
  end
end

# The cookie options Rails documents for session stores, as Set-Cookie
# carries them (Rails writes the session cookie through its cookie jar).
class RailsCookieOptionsTest < ActionDispatch::IntegrationTest
  include RailsTestHelpers

  def build_app(**options)
    store_options = { url: SkTest.url, key: COOKIE, key_prefix: SkTest::KEY_PREFIX, **SkTest.engine_options, **options }
    rails_app_with(store_options)
  end

  def test_secure_domain_and_httponly_false
    @app = build_app(secure: true, domain: "example.org", httponly: false)
    https! # Rails writes no secure cookie over plain HTTP
    host! "www.example.org"
    get "/set", params: { a: "1" }
    line = session_set_cookie
    refute_nil line
    assert_match(/; domain=example\.org(;|\z)/, line)
    assert_match(/; secure(;|\z)/i, line)
    refute_match(/httponly/i, line)
    assert_equal({ "a" => "1" }, stored(line[/\A#{COOKIE}=(\h{32})/o, 1]))
  end

  # tld_length 3 gives ".app.example.com", where Rails' default would give
  # ".example.com": the option reaches the cookie jar. (Called directly: the
  # integration session's cookie parser, CGI::Cookie, rejects a domain with
  # a leading dot, which :all always writes.)
  def test_domain_all_with_tld_length
    app = build_app(domain: :all, tld_length: 3)
    _status, headers, _body = app.call(Rack::MockRequest.env_for("http://www.app.example.com/set?a=1"))
    line = Array(headers["Set-Cookie"]).join("\n").split("\n").find { |l| l.start_with?("#{COOKIE}=") }
    assert_match(/; domain=\.app\.example\.com(;|\z)/, line)
    assert_match(/; HttpOnly/i, line, "httponly is on unless turned off")
  end
end

# Switching from redis-session-store: its sessions (Marshal or JSON strings,
# under the private id since 0.11.6 or the public id before) are read on the
# first request and rewritten in Sessionkeeper's format.
class RailsMigrationTest < ActionDispatch::IntegrationTest
  include RailsTestHelpers

  # The options an app used with redis-session-store, with the store renamed.
  def setup
    @prefix = TestRedis.unique_prefix("rss")
    @errors = []
  end

  def build_app(rss_shape: true, **options)
    store_options = { key: COOKIE, on_session_load_error: ->(e, sid) { @errors << [e, sid] }, **SkTest.engine_options }
    store_options[:redis] = { url: SkTest.url, key_prefix: @prefix, expire_after: 3600 } if rss_shape
    store_options.merge!(options)
    rails_app_with(store_options)
  end

  def app
    @app ||= build_app
  end

  def rss_key(id, private_id: true)
    private_id ? TestRedis.storage_key(@prefix, id) : "#{@prefix}#{id}"
  end

  def write_rss(id, bytes, private_id: true)
    TestRedis.cli(SkTest.url, "SET", rss_key(id, private_id: private_id), stdin: bytes)
  end

  def our_store
    Sessionkeeper::Store.new(SkTest.url, key_prefix: @prefix, idle_ttl: 3600, **SkTest.engine_options)
  end

  def test_marshal_session_under_the_private_id_is_migrated
    app
    id = Sessionkeeper::Store.generate_id
    write_rss(id, Marshal.dump({ "user_id" => 7, "flash" => { "discard" => [], "flashes" => { "notice" => "hi" } } }))
    cookies[COOKIE] = id
    get "/get", params: { k: "user_id" }
    assert_equal "7", response.body
    refute_nil our_store.load(id), "rewritten in our format, same id"
    # The peer's key had no expiry; the migrated session has expire_after's.
    ttl = Integer(TestRedis.cli(SkTest.url, "PTTL", rss_key(id)))
    assert_operator ttl, :>, 3_500_000
    assert_operator ttl, :<=, 3_600_000
    get "/set", params: { more: "x" }
    assert_equal id, cookies[COOKIE], "nobody is logged out: the cookie keeps working"
    assert_equal({ "user_id" => 7, "flash" => { "discard" => [], "flashes" => { "notice" => "hi" } }, "more" => "x" },
                 our_store.load(id).data)
  end

  def test_json_session_under_the_public_id_is_migrated
    @app = build_app(serializer: :json)
    id = Sessionkeeper::Store.generate_id
    write_rss(id, '{"user_id":8}', private_id: false)
    cookies[COOKIE] = id
    get "/get", params: { k: "user_id" }
    assert_equal "8", response.body
    assert_equal "0", TestRedis.cli(SkTest.url, "EXISTS", rss_key(id, private_id: false)), "the old key is gone"
  end

  def test_hybrid_reads_marshal_and_json
    @app = build_app(serializer: :hybrid)
    marshal_id = Sessionkeeper::Store.generate_id
    json_id = Sessionkeeper::Store.generate_id
    write_rss(marshal_id, Marshal.dump({ "a" => "marshal" }))
    write_rss(json_id, '{"a":"json"}')
    cookies[COOKIE] = marshal_id
    get "/get", params: { k: "a" }
    assert_equal '"marshal"', response.body
    cookies[COOKIE] = json_id
    get "/get", params: { k: "a" }
    assert_equal '"json"', response.body
  end

  def test_undecodable_legacy_session_calls_on_session_load_error
    app
    id = Sessionkeeper::Store.generate_id
    write_rss(id, "\x04\x08garbage".b)
    cookies[COOKIE] = id
    get "/all"
    assert_equal({}, json["data"])
    assert_equal 1, @errors.size
    assert_kind_of Sessionkeeper::CodecError, @errors.first[0]
    assert_equal "0", TestRedis.cli(SkTest.url, "EXISTS", rss_key(id)), "removed, like redis-session-store does"
  end

  def test_logout_removes_a_legacy_session_that_was_never_loaded
    app
    id = Sessionkeeper::Store.generate_id
    write_rss(id, Marshal.dump({ "user_id" => 9 }), private_id: false)
    cookies[COOKIE] = id
    get "/drop"
    assert_equal "0", TestRedis.cli(SkTest.url, "EXISTS", rss_key(id, private_id: false))
  end

  # An object with load/dump, as redis-session-store accepts: it reads the
  # sessions being migrated, and (given explicitly) stores Ruby-only values.
  module TaggedMarshal
    TAG = "tagged:".b

    def self.dump(value)
      TAG + Marshal.dump(value)
    end

    def self.load(bytes)
      raise ArgumentError, "not written by TaggedMarshal" unless bytes.b.start_with?(TAG)

      Marshal.load(bytes.b.byteslice(TAG.bytesize..)) # rubocop:disable Security/MarshalLoad
    end
  end

  def test_a_serializer_object_reads_the_sessions_being_migrated
    @app = build_app(serializer: TaggedMarshal)
    id = Sessionkeeper::Store.generate_id
    write_rss(id, TaggedMarshal.dump({ "user_id" => 7 }), private_id: false)
    cookies[COOKIE] = id
    get "/get", params: { k: "user_id" }
    assert_equal "7", response.body
    assert_empty @errors
    assert_equal({ "user_id" => 7 }, our_store.load(id).data)
  end

  def test_a_serializer_object_stores_ruby_only_values
    @app = build_app(serializer: TaggedMarshal)
    get "/point", params: { x: 5 }
    assert_response :success
    get "/point_show"
    assert_equal SkTest::Point.new(5, 2).inspect, response.body
    stored = our_store.load(session_id).data["point"]
    assert_equal({ "__ruby_marshal__" => TaggedMarshal.dump(SkTest::Point.new(5, 2)) }, stored, "its bytes, not Marshal's")
  end

  def test_migration_is_off_without_redis_session_store_options
    @app = build_app(rss_shape: false, url: SkTest.url, key_prefix: @prefix)
    id = Sessionkeeper::Store.generate_id
    write_rss(id, Marshal.dump({ "user_id" => 7 }))
    cookies[COOKIE] = id
    get "/get", params: { k: "user_id" }
    assert_equal "nil", response.body
  end
end

# serializer: :marshal: Ruby objects the cross-language format cannot hold
# are stored with Marshal (one dumped value per offending value).
class RailsMarshalTest < ActionDispatch::IntegrationTest
  include RailsTestHelpers

  def setup
    @prefix = TestRedis.unique_prefix("marshal")
    @errors = []
  end

  def app
    @app ||= begin
      store_options = { url: SkTest.url, key: COOKIE, key_prefix: @prefix, serializer: :marshal,
                        on_session_load_error: ->(e, sid) { @errors << [e, sid] }, **SkTest.engine_options }
      rails_app_with(store_options)
    end
  end

  def plain_store
    Sessionkeeper::Store.new(SkTest.url, key_prefix: @prefix, idle_ttl: 3600, **SkTest.engine_options)
  end

  def test_objects_round_trip_and_changes_are_still_per_key
    get "/point", params: { x: 5 }
    assert_response :success
    get "/point_show"
    assert_equal SkTest::Point.new(5, 2).inspect, response.body
    get "/set", params: { other: "v" }
    data = plain_store.load(session_id).data
    assert_equal "v", data["other"], "representable values stay readable by every language"
    assert_equal Marshal.dump(SkTest::Point.new(5, 2)).b, data["point"]["__ruby_marshal__"]
  end

  def test_a_value_marshal_cannot_load_is_a_load_error_and_the_session_is_removed
    get "/set", params: { a: "1" }
    id = session_id
    plain = plain_store
    loaded = plain.load(id)
    # An object of a class the app no longer has.
    Object.const_set(:SkVanishedClass, Class.new)
    bytes = Marshal.dump(SkVanishedClass.new)
    Object.send(:remove_const, :SkVanishedClass)
    loaded.data["point"] = { "__ruby_marshal__" => bytes.b }
    plain.save(id, loaded.baseline, loaded.data)
    get "/all"
    assert_response :success
    assert_equal({}, json["data"], "a fresh session")
    assert_equal 1, @errors.size
    error, sid = @errors.first
    assert_kind_of Sessionkeeper::CodecError, error
    assert_match(/session key "point": Marshal.load could not read the stored value.*SkVanishedClass/, error.message)
    assert_equal id, sid
    assert_nil plain.load(id), "removed, as redis-session-store does"
  end
end

# Shared mode (issue 7): shared_secret: makes the store issue the session
# cookie as the engine-signed value (express-session's format) and accept
# only cookies that verify.
class RailsSharedModeTest < ActionDispatch::IntegrationTest
  include RailsTestHelpers

  SECRET = "the shared secret, at least 32 bytes long"
  OLD = "the secret being retired, also 32+ bytes"

  def setup
    @prefix = TestRedis.unique_prefix("shared")
  end

  def build_app(secret)
    store_options = { url: SkTest.url, key: COOKIE, key_prefix: @prefix, shared_secret: secret,
                      expire_after: 3600, **SkTest.engine_options }
    rails_app_with(store_options)
  end

  def app
    @app ||= build_app(SECRET)
  end

  def store
    @store ||= Sessionkeeper::Store.new(SkTest.url, key_prefix: @prefix, idle_ttl: 3600, **SkTest.engine_options)
  end

  # The cookie value as the browser holds it, i.e. as Set-Cookie wrote it.
  def raw_cookie
    session_set_cookie&.then { |line| line[/\A#{COOKIE}=([^;]*)/, 1] }
  end

  # A session the engine stored, and a signature with both '+' and '/' in it,
  # so that the escaping round trip is really exercised.
  def signed_session(secret = SECRET, data = { "user_id" => 42 })
    loop do
      id, = store.create(data)
      value = Sessionkeeper.sign_cookie(id, secret)
      return [id, value] if value.include?("+") && value.include?("/")

      store.destroy(id)
    end
  end

  def test_issues_the_signed_cookie
    get "/set", params: { a: "1" }
    raw = raw_cookie
    assert_match(/\As%3A\h{32}\.[A-Za-z0-9%]+\z/, raw, "Rack percent-encodes the signed value")
    value = Rack::Utils.unescape(raw)
    id = Sessionkeeper.unsign_cookie(value, SECRET)
    refute_nil id, "the engine verifies the cookie the adapter issued"
    assert_equal Sessionkeeper.sign_cookie(id, SECRET), value
    assert_equal({ "a" => "1" }, store.load(id).data)
    get "/get", params: { k: "a" }
    assert_equal '"1"', response.body, "and the adapter reads it back"
  end

  def test_accepts_a_cookie_the_engine_signed
    _id, value = signed_session
    cookies[COOKIE] = Rack::Utils.escape(value)
    get "/get", params: { k: "user_id" }
    assert_equal "42", response.body
  end

  def test_the_value_survives_every_escaping
    id, value = signed_session
    forms = { "as Rack writes it" => Rack::Utils.escape(value), "raw (Werkzeug)" => value,
              "in double quotes (Django)" => "\"#{value}\"", "with + form-decoded to a space" => value.tr("+", " ") }
    forms.each do |what, form|
      reset!
      cookies[COOKIE] = form
      get "/get", params: { k: "user_id" }
      assert_equal "42", response.body, "#{what}: #{form}"
      assert_equal 42, store.load(id).data["user_id"]
    end
  end

  def test_rejects_tampered_unsigned_and_foreign_cookies
    id, value = signed_session
    tampered = value.sub(/\.(.)/) { ".#{Regexp.last_match(1) == 'A' ? 'B' : 'A'}" }
    other_id, = store.create("user_id" => 7)
    { "tampered" => tampered, "a bare id" => id, "another secret" => Sessionkeeper.sign_cookie(id, OLD),
      "another id under this signature" => value.sub(id, other_id), "garbage" => "s:%%%" }.each do |what, bad|
      reset!
      cookies[COOKIE] = Rack::Utils.escape(bad)
      get "/get", params: { k: "user_id" }
      assert_equal "nil", response.body, "#{what} is no session"
      get "/set", params: { fresh: "yes" }
      fresh = Sessionkeeper.unsign_cookie(Rack::Utils.unescape(raw_cookie), SECRET)
      refute_nil fresh, "#{what}: a fresh, signed session is issued"
      refute_equal id, fresh
      assert_equal({ "fresh" => "yes" }, store.load(fresh).data)
    end
    signature = value.split(".").last
    # Raw bytes reach the adapter as a binary String, escaped ones as invalid UTF-8.
    ["s:#{id}\xE9.#{signature}".b, "s:\xE9\xFF.#{signature}".b, "s%3A#{id}%E9.#{signature}"].each do |bad|
      reset!
      get "/get", params: { k: "user_id" }, headers: { "HTTP_COOKIE" => "#{COOKIE}=#{bad}".b }
      assert_response :success
      assert_equal "nil", response.body, "#{bad.inspect[0, 40]} is no session"
    end
    assert_equal({ "user_id" => 42 }, store.load(id).data, "the real session is untouched")
  end

  def test_rotation
    @app = build_app([SECRET, OLD])
    id, old_value = signed_session(OLD)
    cookies[COOKIE] = Rack::Utils.escape(old_value)
    get "/set", params: { seen: "yes" }
    assert_equal({ "user_id" => 42, "seen" => "yes" }, store.load(id).data, "a cookie signed with the old secret verifies")
    assert_equal Sessionkeeper.sign_cookie(id, SECRET), Rack::Utils.unescape(raw_cookie), "and is re-issued signed with the new one"

    @app = build_app(SECRET) # the old secret retired
    reset!
    cookies[COOKIE] = Rack::Utils.escape(old_value)
    get "/get", params: { k: "user_id" }
    assert_equal "nil", response.body
  end

  def test_bad_secrets_fail_at_boot
    assert_raises(Sessionkeeper::ConfigError) { build_app("too short") }
    assert_raises(Sessionkeeper::ConfigError) { build_app([]) }
    assert_raises(Sessionkeeper::ConfigError) { build_app([SECRET, "short"]) }
  end
end

# frozen_string_literal: true

require_relative "test_helper"
require "rack"
require "rack/test"
require "sessionkeeper/rack"

# The plain Rack middleware (Sinatra, Roda): same options as the Rails store,
# including redis-session-store's option shapes.
class RackSessionTest < Minitest::Test
  COOKIE = "app.session"

  # A tiny app: /set?k=v, /get?k=, /renew, /drop, /all
  ENDPOINT = lambda do |env|
    req = Rack::Request.new(env)
    session = env["rack.session"]
    options = env["rack.session.options"]
    body = case req.path_info
           when "/set" then req.GET.each { |k, v| session[k] = v } && "ok"
           when "/get" then session[req.GET["k"]].inspect
           when "/renew" then (options[:renew] = true) && (session["renewed"] = "yes")
           when "/renew_only" then (options[:renew] = true) && "ok"
           when "/drop" then (options[:drop] = true) && "ok"
           when "/all" then session.to_hash.inspect
           else "?"
           end
    [200, { "Content-Type" => "text/plain" }, [body.to_s]]
  end

  def setup
    @url = require_url(:standalone)
    @prefix = TestRedis.unique_prefix("rack")
    @down = []
  end

  # An option given as nil is left out.
  def browser(**options)
    defaults = { url: @url, key: COOKIE, key_prefix: @prefix, expire_after: 600, same_site: :strict }
    app = Rack::Builder.new do
      use Sessionkeeper::Rack::Session, defaults.merge(options).compact
      run ENDPOINT
    end.to_app
    Rack::Test::Session.new(app)
  end

  def store(**options)
    Sessionkeeper::Store.new(@url, key_prefix: @prefix, idle_ttl: 600, **options)
  end

  def pttl(prefix, id)
    Integer(TestRedis.cli(@url, "PTTL", TestRedis.storage_key(prefix, id)))
  end

  def test_set_get_and_cookie_attributes
    b = browser
    b.get "/set?a=1"
    line = b.last_response.headers["Set-Cookie"]
    assert_match(/\A#{Regexp.escape(COOKIE)}=\h{32}; path=\/; expires=[^;]+; HttpOnly; SameSite=Strict\z/, line)
    id = b.cookie_jar[COOKIE]
    assert_equal({ "a" => "1" }, store.load(id).data)
    b.get "/get?k=a"
    assert_equal '"1"', b.last_response.body
  end

  def test_a_ready_store_is_used_and_its_stats_count_the_requests
    own = store
    b = browser(store: own)
    b.get "/set?a=1"
    b.get "/set?a=2"
    b.get "/get?k=a"
    assert_equal '"2"', b.last_response.body
    stats = own.stats
    assert_equal 1, stats[:creates]
    assert_equal 1, stats[:saves], "the second request changed a; the third changed nothing"
    assert_operator stats[:hits], :>=, 2
    assert_equal 0, stats[:merged_saves]
    assert_equal 0, stats[:errors].values.sum
  end

  def test_renew_and_drop
    b = browser
    b.get "/set?a=1"
    old_id = b.cookie_jar[COOKIE]
    b.get "/renew"
    new_id = b.cookie_jar[COOKIE]
    refute_equal old_id, new_id
    assert_nil store.load(old_id)
    assert_equal({ "a" => "1", "renewed" => "yes" }, store.load(new_id).data)
    b.get "/drop"
    assert_nil store.load(new_id)
  end

  # Rack loads a session lazily; a renew must move the stored data even when
  # the request never read it.
  def test_renew_of_a_session_the_request_never_read
    b = browser
    b.get "/set?a=1"
    old_id = b.cookie_jar[COOKIE]
    b.get "/renew_only"
    new_id = b.cookie_jar[COOKIE]
    refute_equal old_id, new_id
    assert_nil store.load(old_id)
    assert_equal({ "a" => "1" }, store.load(new_id).data)
  end

  def test_redis_session_store_option_shapes
    prefix = TestRedis.unique_prefix("rss")
    b = browser(key_prefix: nil, expire_after: 600, redis: { url: @url, key_prefix: prefix, ttl: 120 })
    b.get "/set?a=1"
    id = b.cookie_jar[COOKIE]
    ttl = pttl(prefix, id)
    assert_operator ttl, :<=, 120_000, "ttl: is the Redis expiry"
    assert_operator ttl, :>, 100_000
    expires = Time.httpdate(b.last_response.headers["Set-Cookie"][/expires=([^;]+)/, 1])
    assert_in_delta Time.now + 600, expires, 5, "expire_after: is the cookie's"
  end

  def test_redis_expire_after_is_the_cookie_and_the_redis_expiry
    prefix = TestRedis.unique_prefix("rss")
    b = browser(key_prefix: nil, expire_after: nil, redis: { url: @url, key_prefix: prefix, expire_after: 120 })
    b.get "/set?a=1"
    ttl = pttl(prefix, b.cookie_jar[COOKIE])
    assert_operator ttl, :<=, 120_000
    assert_operator ttl, :>, 100_000
    expires = Time.httpdate(b.last_response.headers["Set-Cookie"][/expires=([^;]+)/, 1])
    assert_in_delta Time.now + 120, expires, 5
  end

  # host:, port:, db:, username: and password: (with characters a URL must
  # escape) become the URL: the session lands in db 3 of that server, and a
  # wrong password is refused rather than ignored.
  def test_redis_connection_options_name_the_server_db_and_credentials
    host, port = TestRedis.first_host(@url)
    user = "sk-rack-#{Process.pid}"
    password = "p@ss:w/rd %?#"
    TestRedis.cli(@url, "ACL", "SETUSER", user, "on", ">#{password}", "~*", "+@all")
    prefix = TestRedis.unique_prefix("rss")
    redis = { host: host, port: Integer(port), db: 3, username: user, password: password, key_prefix: prefix }
    b = browser(url: nil, key_prefix: nil, redis: redis)
    b.get "/set?a=1"
    key = TestRedis.storage_key(prefix, b.cookie_jar[COOKIE])
    assert_equal "1", TestRedis.cli(@url, "-n", 3, "EXISTS", key)
    assert_equal "0", TestRedis.cli(@url, "-n", 0, "EXISTS", key)

    wrong = browser(url: nil, key_prefix: nil, redis: redis.merge(password: "wrong"))
    assert_raises(Sessionkeeper::AuthError) { wrong.get "/set?a=1" }
  ensure
    TestRedis.cli(@url, "ACL", "DELUSER", user) if user
  end

  # redis-rb's reading: timeout: is the default of the others, read_timeout:
  # bounds a reply, and only connect_timeout: (or timeout:) a connect.
  def test_redis_timeouts_are_the_engine_timeouts
    {
      { timeout: 0.3 } => [0.3, 0.3],
      { connect_timeout: 0.7, read_timeout: 0.4 } => [0.7, 0.4],
      { timeout: 4, read_timeout: 0.4 } => [4.0, 0.4],
      { read_timeout: 0.4 } => [2.0, 0.4]
    }.each do |redis, (connect, command)|
      middleware = nil
      assert_silent do
        middleware = Sessionkeeper::Rack::Session.new(ENDPOINT, redis: redis.merge(url: @url), key_prefix: @prefix)
      end
      store = middleware.sessionkeeper_store
      assert_equal [connect, command], [store.connect_timeout, store.command_timeout], redis.inspect
    end
  end

  def test_cookie_options_reach_set_cookie
    b = browser(secure: true, domain: "example.org", httponly: false)
    b.get "https://example.org/set?a=1"
    line = b.last_response.headers["Set-Cookie"]
    assert_match(/; domain=example\.org(;|\z)/, line)
    assert_match(/; secure(;|\z)/i, line)
    refute_match(/httponly/i, line)
  end

  def test_an_oversized_session_is_an_error_and_keeps_what_was_stored
    b = browser(max_size: 2000)
    b.get "/set?a=1"
    e = assert_raises(Sessionkeeper::TooLargeError) { b.get "/set?big=#{'x' * 3000}" }
    assert_match(/max_size/, e.message)
    b.get "/get?k=a"
    assert_equal '"1"', b.last_response.body, "the stored session is as before"
    b.get "/get?k=big"
    assert_equal "nil", b.last_response.body
  end

  def test_an_id_from_the_params_that_is_not_a_string_is_no_session
    b = browser(cookie_only: false)
    b.get "/set?a=1"
    id = b.last_response["Set-Cookie"][/#{Regexp.escape(COOKIE)}=([^;]+)/o, 1]
    b.clear_cookies
    ["#{COOKIE}[]=#{id}", "#{COOKIE}[x]=#{id}", "#{COOKIE}=%E9%FF"].each do |query|
      b.get "/get?k=a&#{query}"
      assert_equal 200, b.last_response.status, query
      assert_equal "nil", b.last_response.body, query
      b.clear_cookies
    end
    b.get "/get?k=a&#{COOKIE}=#{id}"
    assert_equal '"1"', b.last_response.body, "the id as a plain param still works"
  end

  def test_redis_down_fails_open
    b = browser(url: "redis://127.0.0.1:#{TestRedis.closed_port}/0", connect_timeout: 0.3,
                on_redis_down: ->(e, _env, sid) { @down << [e, sid] })
    b.get "/set?a=1"
    assert_equal 200, b.last_response.status
    assert_nil b.last_response.headers["Set-Cookie"]
    assert_equal 1, @down.size
    assert_kind_of Sessionkeeper::ConnectionError, @down.first[0]
  end

  def test_redis_down_fails_closed_when_asked
    b = browser(url: "redis://127.0.0.1:#{TestRedis.closed_port}/0", connect_timeout: 0.3, fail_open: false)
    b.set_cookie("#{COOKIE}=#{Sessionkeeper::Store.generate_id}")
    assert_raises(Sessionkeeper::ConnectionError) { b.get "/get?k=a" }
  end

  # A record of ours that cannot be read (a truncated map): the hook hears
  # of it once, the record is removed, the request gets a fresh session.
  def test_a_corrupt_session_calls_the_load_error_hook_and_starts_fresh
    errors = []
    b = browser(on_session_load_error: ->(e, sid) { errors << [e, sid] })
    b.get "/set?a=1"
    id = b.cookie_jar[COOKIE]
    key = TestRedis.storage_key(@prefix, id)
    TestRedis.cli(@url, "SET", key, "SKv1\x82\xA4a:ok".b)
    b.get "/get?k=a"
    assert_equal "nil", b.last_response.body
    assert_equal 1, errors.size
    assert_kind_of Sessionkeeper::CodecError, errors.first[0]
    assert_equal id, errors.first[1]
    assert_equal "0", TestRedis.cli(@url, "EXISTS", key).strip
  end
end

# Shared mode through the plain Rack middleware (Sinatra, Roda).
class RackSharedModeTest < Minitest::Test
  SECRET = "the shared secret, at least 32 bytes long"

  def setup
    url = require_url(:standalone)
    prefix = TestRedis.unique_prefix("rack-shared")
    @store = Sessionkeeper::Store.new(url, key_prefix: prefix, idle_ttl: 600)
    @browser = Rack::Test::Session.new(Rack::Builder.new do
      use Sessionkeeper::Rack::Session, url: url, key: "shared_session", key_prefix: prefix, shared_secret: SECRET
      run RackSessionTest::ENDPOINT
    end.to_app)
  end

  def test_issues_and_accepts_signed_cookies_only
    @browser.get "/set?a=1"
    raw = @browser.last_response.headers["Set-Cookie"][/\Ashared_session=([^;]*)/, 1]
    id = Sessionkeeper.unsign_cookie(Rack::Utils.unescape(raw), SECRET)
    refute_nil id
    assert_equal({ "a" => "1" }, @store.load(id).data)

    other, = @store.create("b" => "2")
    @browser.clear_cookies
    @browser.set_cookie("shared_session=#{Rack::Utils.escape(Sessionkeeper.sign_cookie(other, SECRET))}")
    @browser.get "/get?k=b"
    assert_equal '"2"', @browser.last_response.body
    @browser.clear_cookies
    @browser.set_cookie("shared_session=#{other}")
    @browser.get "/get?k=b"
    assert_equal "nil", @browser.last_response.body, "a plain id is no session in shared mode"
  end
end

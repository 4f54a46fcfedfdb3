# frozen_string_literal: true

require_relative "test_helper"
require "net/http"

# Debian's Puma, preload_app! and 2 workers, serving the test Rails app: the
# master used the store before forking (config.ru), and every worker must
# still serve the same sessions correctly.
class PumaTest < Minitest::Test
  def setup
    require_url(:standalone)
    @port = TestRedis.closed_port
    log = File.join(Dir.tmpdir, "sk-puma-#{Process.pid}.log")
    env = { "SK_PUMA_PORT" => @port.to_s, "SK_TEST_TOPOLOGY" => "standalone", "RUBYLIB" => File.expand_path("../lib", __dir__) }
    @log = log
    @puma = Process.spawn(env, "puma", "-C", File.join(__dir__, "puma.rb"), File.join(__dir__, "config.ru"),
                          %i[out err] => log, pgroup: true)
    wait_until_up
  end

  def teardown
    return unless @puma

    Process.kill(:TERM, -@puma)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
    sleep 0.1 until Process.wait(@puma, Process::WNOHANG) || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
    Process.kill(:KILL, -@puma) rescue nil # rubocop:disable Style/RescueModifier
    Process.wait(@puma) rescue nil # rubocop:disable Style/RescueModifier
  end

  def wait_until_up
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
    loop do
      return if Net::HTTP.get_response(URI("http://127.0.0.1:#{@port}/read_only")).code == "200"
    rescue SystemCallError, IOError
      flunk "puma did not start:\n#{File.read(@log)}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      sleep 0.2
    end
  end

  def request(path, cookie = nil)
    http = Net::HTTP.new("127.0.0.1", @port)
    http.read_timeout = 10
    req = Net::HTTP::Get.new(path)
    req["Cookie"] = cookie if cookie
    http.request(req)
  end

  def test_workers_serve_one_session_after_preload_and_fork
    res = request("/set?user=ann")
    assert_equal "200", res.code
    cookie = res["Set-Cookie"][/\A[^;]+/]
    pids = []
    40.times do
      res = request("/pid", cookie)
      assert_equal "200", res.code, File.read(@log)
      pid, user = res.body.split(" ", 2)
      assert_equal "ann", user
      pids << pid
      break if pids.uniq.size >= 2 && pids.size >= 10
    end
    assert_operator pids.uniq.size, :>=, 2, "both workers served requests"
    id = cookie.split("=", 2).last
    store = Sessionkeeper::Store.new(TestRedis.standalone_url, key_prefix: "sktest:rails:#{@puma}:")
    # The prefix embeds the master's pid (rails_app.rb), so the store sees the app's sessions.
    assert_equal pids.size, store.load(id).data["hits"], "every request's increment was kept"
  end
end

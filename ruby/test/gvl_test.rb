# frozen_string_literal: true

require_relative "test_helper"
require "timeout"

# The GVL is released during every Redis wait, and the wait can be
# interrupted. `CLIENT PAUSE ... ALL` (sent from redis-cli, another
# connection) makes Redis hold every reply, so a load blocks for the pause.
class GvlTest < Minitest::Test
  def setup
    @url = require_url(:standalone)
    @store = Sessionkeeper::Store.new(@url, key_prefix: TestRedis.unique_prefix("gvl"), command_timeout: 5)
    @id, = @store.create("a" => 1) # connects before the pause
  end

  def teardown
    TestRedis.cli(@url, "CLIENT", "UNPAUSE") if @url
  end

  def pause(ms)
    TestRedis.cli(@url, "CLIENT", "PAUSE", ms, "ALL")
  end

  def test_other_threads_run_while_one_waits_on_redis
    ticks = 0
    stop = false
    ticker = Thread.new do
      until stop
        ticks += 1
        sleep 0.01
      end
    end
    sleep 0.05
    pause(1000)
    before = ticks
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    loaded = @store.load(@id)
    waited = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    during = ticks - before
    assert_equal({ "a" => 1 }, loaded.data)
    assert_operator waited, :>=, 0.7, "the pause did not block the load"
    # One tick per 10 ms: ~100 with the GVL released, 0-1 with it held.
    assert_operator during, :>=, 30, "the ticker thread ran #{during} times in #{waited.round(2)}s: the GVL was held"
  ensure
    stop = true
    ticker&.join(2) || ticker&.kill
  end

  def test_timeout_interrupts_a_wait
    pause(3000)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    assert_raises(Timeout::Error) { Timeout.timeout(0.3) { @store.load(@id) } }
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 1.5
    TestRedis.cli(@url, "CLIENT", "UNPAUSE")
    assert_equal({ "a" => 1 }, @store.load(@id).data, "the store still works after an interrupted call")
  end

  def test_thread_raise_interrupts_a_wait
    pause(3000)
    waiter = Thread.new do
      @store.load(@id)
      :finished
    rescue RuntimeError => e
      e.message
    end
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    sleep 0.2
    waiter.raise(RuntimeError, "stop waiting")
    assert_equal "stop waiting", waiter.value
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 1.5, "the wait was not interrupted"
  end

  # Saves wait on their own socket too (the core's save_blocking_interruptible):
  # the GVL is released, Thread#raise cuts the wait short, and saving again
  # afterwards is safe.
  def test_a_save_releases_the_gvl_and_can_be_interrupted
    loaded = @store.load(@id)
    loaded.data["b"] = 2
    pause(3000)
    waiter = Thread.new do
      @store.save(@id, loaded.baseline, loaded.data)
      :finished
    rescue RuntimeError => e
      e.message
    end
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    # This thread sleeps, wakes and raises while the save waits: with the GVL
    # held by the waiter it could do none of it before the pause ends (3 s).
    sleep 0.2
    waiter.raise(RuntimeError, "stop waiting")
    assert_equal "stop waiting", waiter.value
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 1.5, "the save was not interrupted"
    TestRedis.cli(@url, "CLIENT", "UNPAUSE")
    assert_includes %i[saved unchanged], @store.save(@id, loaded.baseline, loaded.data)
    assert_equal({ "a" => 1, "b" => 2 }, @store.load(@id).data)
  end

  # The other calls that wait on Redis (nogvl.rs's without_gvl), each in its
  # own thread, all waiting on one pause. While they wait this thread wakes
  # from its sleep, and each stops as soon as it is raised into. Were one
  # holding the GVL, this thread could not wake before the pause ends;
  # without an unblocking function, that call would not stop before then.
  # (A pause cannot be lifted early: Redis holds CLIENT UNPAUSE too.)
  def test_every_call_releases_the_gvl_and_can_be_interrupted
    store = Sessionkeeper::Store.new(@url, key_prefix: TestRedis.unique_prefix("gvl"), command_timeout: 30)
    id, = store.create("a" => 1)
    calls = {
      create: -> { store.create("b" => 2) },
      insert: -> { store.insert(Sessionkeeper::Store.generate_id, "b" => 2) },
      destroy: -> { store.destroy(id) },
      renew: -> { store.renew(id) },
      touch: -> { store.touch(id) },
      exists?: -> { store.exists?(id) },
      legacy_read: -> { store.legacy_read(id, [[:plain, "sktest:gvl-legacy:"]]) }
    }
    pause(4000)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    waiters = calls.transform_values do |call|
      Thread.new do
        call.call
        :finished
      rescue RuntimeError => e
        e.message
      end
    end
    sleep 0.3
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 2, "a call held the GVL"
    waiters.each_value { |waiter| waiter.raise(RuntimeError, "stop waiting") }
    waiters.each { |name, waiter| assert_equal "stop waiting", waiter.join(2)&.value, "#{name} was not interrupted" }
    TestRedis.cli(@url, "CLIENT", "UNPAUSE") # returns when the pause ends
    fresh, = store.create("c" => 3)
    assert_equal({ "c" => 3 }, store.load(fresh).data, "the store still works after the interrupted calls")
  ensure
    waiters&.each_value(&:kill)
  end

  # A signal whose handler raises nothing (SIGCHLD, a USR1 trap) also wakes
  # the waiting main thread through the unblocking function; the call must
  # resume waiting, not fail.
  def test_a_signal_that_raises_nothing_does_not_break_a_wait
    handled = 0
    previous = trap(:USR1) { handled += 1 }
    pause(800)
    signaller = Thread.new do
      sleep 0.2
      Process.kill(:USR1, Process.pid)
    end
    assert_equal({ "a" => 1 }, @store.load(@id).data)
    signaller.join
    assert_equal 1, handled
  ensure
    trap(:USR1, previous || "DEFAULT")
  end

  # A main thread that is the only Ruby thread waits without an unblocking
  # function (nogvl.rs: Ruby would start a helper thread per call for one).
  # A signal that arrives meanwhile is handled as soon as the call returns:
  # the call is neither broken nor left hanging, and the handler's exception
  # reaches the caller. Minitest keeps worker threads, so this runs in a
  # child Ruby whose main thread is alone.
  def test_a_lone_main_thread_handles_a_signal_when_the_call_returns
    host, port = TestRedis.first_host(@url)
    script = <<~RUBY
      require "sessionkeeper"
      raise "not alone: \#{Thread.list.size} threads" unless Thread.list.size == 1
      store = Sessionkeeper::Store.new(ARGV[0], key_prefix: "sktest:lone:", command_timeout: 5)
      id, = store.create("a" => 1)
      trap(:USR1) { raise "signalled" }
      system("redis-cli", "-h", ARGV[1], "-p", ARGV[2], "CLIENT", "PAUSE", "800", "ALL", out: File::NULL) or raise "pause"
      killer = Process.spawn("sleep 0.2; kill -USR1 \#{Process.pid}")
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      begin
        store.load(id)
        puts "not interrupted"
      rescue RuntimeError => e
        waited = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
        Process.wait(killer)
        puts "\#{e.message} after \#{waited.round(2)}s, then \#{store.load(id).data.inspect}"
      end
    RUBY
    out, status = Open3.capture2e("timeout", "20", RbConfig.ruby, "-I", File.expand_path("../lib", __dir__),
                                  "-e", script, @url, host, port)
    assert status.success?, out
    m = out.match(/\Asignalled after ([\d.]+)s, then \{"a"=>1\}\Z/)
    assert m, out
    assert_operator Float(m[1]), :<, 4, "bounded by the pause, never a hang"
  end

  def test_command_timeout_bounds_a_wait
    store = Sessionkeeper::Store.new(@url, key_prefix: TestRedis.unique_prefix("gvl"), command_timeout: 0.3)
    id, = store.create("a" => 1)
    pause(2000)
    e = assert_raises(Sessionkeeper::TimeoutError) { store.load(id) }
    assert e.temporary?
    assert_kind_of Sessionkeeper::ConnectionError, e
  end
end

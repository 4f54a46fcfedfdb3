# frozen_string_literal: true

require_relative "test_helper"
require "json"
require "rbconfig"

# Memory growth: 20k load/save cycles and a few thousand failed calls must not
# grow the process. Runs in a child Ruby so that nothing else this suite does
# moves its RSS; the RSS (VmRSS from /proc/self/status) is read after a
# warm-up that lets the allocator, Ruby's heap, the runtime and the
# connection settle, and again at the end. The bound is generous on purpose
# (16 MB; a leak of ~400 bytes per call, over the ~43k calls, crosses it), and nothing
# here asserts time.
class MemoryGrowthTest < Minitest::Test
  CYCLES = 20_000
  ERRORS = 3_000
  BOUND_MB = 16

  CHILD = <<~'RUBY'
    require "sessionkeeper"
    require "json"
    url, closed_port, cycles, errors = ARGV[0], ARGV[1], Integer(ARGV[2]), Integer(ARGV[3])
    Point = Struct.new(:x, :y)

    def rss_kb
      GC.start(full_mark: true, immediate_sweep: true)
      File.read("/proc/self/status")[/^VmRSS:\s+(\d+)/, 1].to_i
    end

    store = Sessionkeeper::Store.new(url, key_prefix: "sktest:memory:#{Process.pid}:", serializer: :marshal)
    down = Sessionkeeper::Store.new("redis://127.0.0.1:#{closed_port}/0", connect_timeout: 0.2, command_timeout: 0.2)
    id, = store.create("user_id" => 1, "cart" => [1, 2, 3], "point" => Point.new(1, 2), "at" => Time.now)

    cycle = lambda do |i|
      loaded = store.load(id)
      loaded.data["n"] = i
      loaded.data["point"] = Point.new(i, i) if (i % 10).zero?
      store.save(id, loaded.baseline, loaded.data)
      if (i % 100).zero? # the other operations now and then
        other, = store.create("i" => i)
        store.renew(other).then { |renewed| store.destroy(renewed) }
      end
    end
    fail_once = lambda do
      down.load(Sessionkeeper::Store.generate_id)
      raise "expected a ConnectionError"
    rescue Sessionkeeper::ConnectionError
      nil
    end

    2_000.times(&cycle)
    300.times { fail_once.call }
    before = rss_kb
    cycles.times(&cycle)
    errors.times { fail_once.call }
    after = rss_kb
    puts JSON.generate(before_kb: before, after_kb: after, n: store.load(id).data["n"], stats: store.stats[:errors])
  RUBY

  def test_rss_is_flat_over_load_save_cycles_and_errors
    url = require_url(:standalone)
    out, status = Open3.capture2e("timeout", "600", RbConfig.ruby, "-W0", "-I", File.expand_path("../lib", __dir__),
                                  "-e", CHILD, url, TestRedis.closed_port.to_s, CYCLES.to_s, ERRORS.to_s)
    assert status.success?, out
    result = JSON.parse(out.lines.last)
    assert_equal CYCLES - 1, result["n"], "every cycle ran"
    growth_mb = (result["after_kb"] - result["before_kb"]) / 1024.0
    puts format("\n  memory: RSS %.1f MB after warm-up, %+.1f MB after %d load/save cycles and %d failed calls",
                result["before_kb"] / 1024.0, growth_mb, CYCLES, ERRORS)
    assert_operator growth_mb, :<, BOUND_MB, "RSS grew by #{growth_mb.round(1)} MB"
  end
end

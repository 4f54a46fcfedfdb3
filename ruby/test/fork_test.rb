# frozen_string_literal: true

require_relative "test_helper"

# A store used before fork works in the child (the engine rebuilds its
# runtime and connections there) and still works in the parent. Bounded: a
# child that hangs is killed and the test fails.
class ForkTest < Minitest::Test
  def run_child(timeout: 10)
    reader, writer = IO.pipe
    pid = fork do
      reader.close
      result = begin
        yield
      rescue Exception => e # rubocop:disable Lint/RescueException
        "#{e.class}: #{e.message}"
      end
      writer.write(Marshal.dump(result))
      writer.close
      exit!(0)
    end
    writer.close
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    status = nil
    until (status = Process.wait2(pid, Process::WNOHANG))
      if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        Process.kill(:KILL, pid)
        Process.wait(pid)
        flunk "the child did not finish within #{timeout}s (hung after fork)"
      end
      sleep 0.05
    end
    assert status[1].success?, "child exited with #{status[1].inspect}"
    Marshal.load(reader.read)
  ensure
    reader&.close
  end

  [[:standalone], [:cluster]].each do |(topology)|
    define_method("test_child_loads_and_saves_after_fork_#{topology}") do
      url = require_url(topology)
      store = Sessionkeeper::Store.new(url, key_prefix: TestRedis.unique_prefix("fork"), command_timeout: 2)
      id, = store.create("who" => "parent")
      store.load(id) # the parent's runtime and connections exist now
      got = run_child do
        loaded = store.load(id)
        loaded.data["child"] = Process.pid
        [loaded.data["who"], store.save(id, loaded.baseline, loaded.data)]
      end
      assert_equal ["parent", :saved], got
      data = store.load(id).data
      assert_equal "parent", data["who"]
      assert_kind_of Integer, data["child"], "the parent sees the child's write"
    end
  end
end
